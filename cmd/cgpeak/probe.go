package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/cgpeak/cgpeak/internal/probe"
)

// Probe is `cgpeak probe --json`.
type Probe = probe.Probe

func probeCmd(args []string) int {
	fs := pflag.NewFlagSet("probe", pflag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	setUsage(fs, "Usage: cgpeak probe [--json]\n\nSays what this kernel lets cgpeak measure (cgroup version, memory.peak, BPF,\nthe tracing backends) and what cgpeak will do here.\n\nFlags:\n")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "cgpeak: probe takes no arguments (%q): run cgpeak probe\n", fs.Arg(0))
		return exitUsage
	}
	p := probe.Run()
	return emit(dest{}, os.Stdout, func(w io.Writer) error {
		if *asJSON {
			return writeJSON(w, p)
		}
		fmt.Fprintf(w, "cgpeak probe: Linux %s\n", p.Kernel)
		for _, f := range p.Features {
			fmt.Fprintf(w, "  %-26s %-8s %s\n", f.Name, f.State, f.Detail)
		}
		fmt.Fprintln(w, "so cgpeak will:")
		for _, v := range p.Verdict {
			fmt.Fprintln(w, "  - "+v)
		}
		return nil
	})
}
