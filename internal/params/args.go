package params

import (
	"fmt"
	"strings"

	"github.com/google/shlex"
)

// Sep joins the words of a flag that takes several (hyperfine's
// "-P VAR MIN MAX", "-L VAR VALUES") into the one value pflag can carry.
const Sep = "\x1f"

// multi names the flags that take several words, long and short, and how many.
var multi = map[string]struct {
	long string
	n    int
}{
	"-P": {"--parameter-scan", 3}, "--parameter-scan": {"--parameter-scan", 3},
	"-L": {"--parameter-list", 2}, "--parameter-list": {"--parameter-list", 2},
}

// JoinMultiWord rewrites "-P VAR MIN MAX" as "--parameter-scan=VAR<Sep>MIN<Sep>MAX"
// (likewise -L) so a flag parser that takes one value per flag reads
// hyperfine's command lines unchanged. Words after "--" are left alone.
func JoinMultiWord(args []string) ([]string, error) {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...), nil
		}
		m, ok := multi[a]
		if !ok {
			out = append(out, a)
			continue
		}
		if i+m.n >= len(args) {
			return nil, fmt.Errorf("%s takes %d words (%s)", a, m.n, map[int]string{2: "NAME VALUES", 3: "NAME MIN MAX"}[m.n])
		}
		out = append(out, m.long+"="+strings.Join(args[i+1:i+1+m.n], Sep))
		i += m.n
	}
	return out, nil
}

// SplitWords splits a command line into words as a POSIX shell would,
// quotes and backslashes included, without running one: hyperfine's -N.
// shlex is a small, well-used splitter; a hand-written one would get the
// corner cases of quoting wrong.
func SplitWords(line string) ([]string, error) {
	w, err := shlex.Split(line)
	if err != nil {
		return nil, fmt.Errorf("splitting %q into words: %w", line, err)
	}
	if len(w) == 0 {
		return nil, fmt.Errorf("an empty command line")
	}
	return w, nil
}
