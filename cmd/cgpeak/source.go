package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/cgpeak/cgpeak/cgroup"
)

// specNames names the measured commands for the systemd scope's description.
func specNames(specs []commandSpec) string {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.name
	}
	return strings.Join(names, "; ")
}

func closeSource(src *cgroup.Source) {
	if err := src.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
	}
}
