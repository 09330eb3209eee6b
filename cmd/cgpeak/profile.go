package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/cgpeak/cgpeak/internal/chargeprof"
	"github.com/cgpeak/cgpeak/internal/outfile"
	"github.com/cgpeak/cgpeak/internal/replay"
	"github.com/cgpeak/cgpeak/internal/symbolize"
	"github.com/cgpeak/cgpeak/plot"
)

// profileOpts are explain's outputs of charges by stack.
type profileOpts struct {
	pprof, folded, flame string
	top                  int
	symbols              []string
}

func profileFlags(fs *pflag.FlagSet) *profileOpts {
	o := &profileOpts{}
	fs.StringVar(&o.pprof, "pprof", "", "write the charge requests by user and kernel stack as a pprof profile to FILE (go tool pprof FILE)")
	fs.StringVar(&o.folded, "folded", "", "write the charge requests as folded stacks (a;b;c PAGES) to FILE, for flame graphs")
	fs.StringVar(&o.flame, "flame", "", "draw the folded stacks as a flame graph (SVG) to FILE")
	fs.IntVar(&o.top, "top", 0, "print the N user functions that charged the most pages, with what for")
	fs.StringArrayVar(&o.symbols, "symbols", nil, "also look for the traced binaries in DIR (by name, or DIR/.build-id/); repeatable")
	return o
}

func (o *profileOpts) wanted() bool {
	return o.pprof != "" || o.folded != "" || o.flame != "" || o.top > 0
}

// topFunction is one line of --top, in pages.
type topFunction struct {
	Function  string            `json:"function"`
	File      string            `json:"file,omitempty"`
	SelfPages uint64            `json:"self_pages"` // requests whose innermost user frame it is
	CumPages  uint64            `json:"cum_pages"`  // requests with it anywhere on the user stack
	Kinds     map[string]uint64 `json:"kinds"`      // self pages by what for
}

// write names the stacks' frames and writes the files asked for; it
// returns the top functions, and a non-zero exit code when a file could
// not be written or the trace has no charge requests.
func (o *profileOpts) write(p *chargeprof.Builder, ex *replay.Report) ([]topFunction, int) {
	switch {
	case ex.Backend == "tracepoint":
		fmt.Fprintf(os.Stderr, "cgpeak: %s: a trace of the tracepoint backend records statistic updates (what the pages were for: anon, file, kernel...), not charge requests or their stacks, so it has none to attribute: record with --trace-charges on a kernel where fentry or kprobes work (cgpeak probe)\n", ex.Trace)
		return nil, exitNoStacks
	case ex.Mode != "charges":
		fmt.Fprintf(os.Stderr, "cgpeak: %s: a %s trace has no charge requests to attribute: record one with --trace-charges\n", ex.Trace, modeLabel(ex.Mode, ex.StocksRead))
		return nil, exitNoStacks
	}
	sym := symbolize.New(append(o.symbols, "/usr/lib/debug")...)
	var cgroups map[string]string
	if e := p.End(); e != nil {
		cgroups = e.Cgroups
	}
	stacks := p.Stacks(sym, cgroups)
	for _, w := range sym.Warnings() {
		fmt.Fprintf(os.Stderr, "cgpeak: symbols: %s\n", w)
	}
	if len(sym.Warnings()) > 0 && len(o.symbols) == 0 {
		fmt.Fprintln(os.Stderr, "cgpeak: symbols: give the directory holding the traced binaries with --symbols DIR")
	}
	if o.pprof != "" {
		comment := fmt.Sprintf("cgpeak explain %s: charge requests by user and kernel stack, Linux %s", ex.Trace, ex.Kernel)
		if err := outfile.Write(o.pprof, func(w io.Writer) error { return chargeprof.WritePprof(w, stacks, ex.PageSize, comment) }); err != nil {
			fmt.Fprintf(os.Stderr, "cgpeak: writing --pprof: %v\n", err)
			return nil, exitUsage
		}
	}
	if o.folded != "" {
		if err := outfile.Write(o.folded, func(w io.Writer) error { return chargeprof.WriteFolded(w, stacks) }); err != nil {
			fmt.Fprintf(os.Stderr, "cgpeak: writing --folded: %v\n", err)
			return nil, exitUsage
		}
	}
	if o.flame != "" {
		var folded bytes.Buffer
		err := chargeprof.WriteFolded(&folded, stacks)
		if err == nil {
			title := fmt.Sprintf("cgpeak: pages charged by stack, %s (Linux %s)", filepath.Base(ex.Trace), ex.Kernel)
			err = outfile.Write(o.flame, func(w io.Writer) error { return plot.Flame(w, title, &folded) })
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "cgpeak: writing --flame: %v\n", err)
			return nil, exitUsage
		}
	}
	var top []topFunction
	if o.top > 0 {
		for _, f := range chargeprof.Top(stacks, o.top) {
			top = append(top, topFunction{Function: f.Name, File: f.File, SelfPages: f.Self, CumPages: f.Cum, Kinds: f.Kinds})
		}
	}
	return top, 0
}

// writeTop prints --top.
func writeTop(w io.Writer, top []topFunction, pageSize uint64) {
	var total uint64
	for _, f := range top {
		total += f.SelfPages
	}
	fmt.Fprintf(w, "\nuser functions that charged the most pages (charge requests in the trace, by their innermost user frame):\n")
	fmt.Fprintf(w, "%10s %10s %10s  %s\n", "pages", "memory", "cum pages", "function (what for)")
	for _, f := range top {
		kinds := make([]string, 0, len(f.Kinds))
		for k := range f.Kinds {
			kinds = append(kinds, k)
		}
		sort.Slice(kinds, func(i, j int) bool {
			return f.Kinds[kinds[i]] > f.Kinds[kinds[j]] || f.Kinds[kinds[i]] == f.Kinds[kinds[j]] && kinds[i] < kinds[j]
		})
		for i, k := range kinds {
			label := kindNames[k]
			if label == "" {
				label = k
			}
			kinds[i] = fmt.Sprintf("%s %d", label, f.Kinds[k])
		}
		name := f.Function
		if f.File != "" {
			name += " " + filepath.Base(f.File)
		}
		fmt.Fprintf(w, "%10d %10s %10d  %s (%s)\n", f.SelfPages, human(f.SelfPages*pageSize), f.CumPages, name, strings.Join(kinds, ", "))
	}
}
