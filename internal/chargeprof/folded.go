package chargeprof

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
)

// WriteFolded writes one line per distinct stack, "a;b;c N", root first:
// the process name, the user frames from main down, then the kernel frames
// marked "_[k]" (the flame graph tools' convention for kernel frames); N is
// the pages charged. flamegraph.pl, inferno and speedscope read it.
func WriteFolded(w io.Writer, stacks []Stack) error {
	sums := map[string]uint64{}
	for _, s := range stacks {
		sums[strings.Join(FoldedFrames(s), ";")] += s.Pages
	}
	lines := make([]string, 0, len(sums))
	for k := range sums {
		lines = append(lines, k)
	}
	sort.Strings(lines)
	bw := bufio.NewWriter(w)
	for _, l := range lines {
		if _, err := fmt.Fprintf(bw, "%s %d\n", l, sums[l]); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// FoldedFrames is a stack's frames root first, as WriteFolded names them.
func FoldedFrames(s Stack) []string {
	fs := []string{clean(s.Comm)}
	if s.NoUser != "" {
		fs = append(fs, "["+s.NoUser+"]")
	}
	for i := len(s.User) - 1; i >= 0; i-- {
		fs = append(fs, clean(s.User[i].Name()))
	}
	for i := len(s.Kernel) - 1; i >= 0; i-- {
		fs = append(fs, clean(s.Kernel[i])+"_[k]")
	}
	return fs
}

// clean keeps a frame within its field: ';' separates frames and the last
// blank the count.
func clean(s string) string {
	return strings.NewReplacer(";", ":", "\n", " ").Replace(s)
}
