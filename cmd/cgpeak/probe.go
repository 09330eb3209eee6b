package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/cgpeak/cgpeak/internal/probe"
)

// Probe is `cgpeak probe --json`.
type Probe = probe.Probe

func probeCmd(args []string) int {
	fs := pflag.NewFlagSet("probe", pflag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	p := probe.Run()
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(p)
		return 0
	}
	fmt.Printf("cgpeak probe: Linux %s\n", p.Kernel)
	for _, f := range p.Features {
		fmt.Printf("  %-26s %-8s %s\n", f.Name, f.State, f.Detail)
	}
	fmt.Println("so cgpeak will:")
	for _, v := range p.Verdict {
		fmt.Println("  - " + v)
	}
	return 0
}
