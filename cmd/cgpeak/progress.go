package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// progress draws a one-line bar on stderr during a series of runs, only
// when stderr is a terminal: logs and pipes get none of its escapes.
type progress struct {
	w     io.Writer
	total int
	on    bool
}

func newProgress(f *os.File, total int) *progress {
	return &progress{w: f, total: total, on: isTerminal(f) && total > 1}
}

func (p *progress) set(done int, label string) {
	if !p.on {
		return
	}
	const width = 30
	fill := width * done / p.total
	if len(label) > 40 {
		label = label[:37] + "..."
	}
	fmt.Fprintf(p.w, "\r\033[K[%s%s] %d/%d %s", strings.Repeat("#", fill), strings.Repeat(".", width-fill), done, p.total, label)
}

func (p *progress) clear() {
	if p.on {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
