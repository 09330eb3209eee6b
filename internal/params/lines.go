package params

import (
	"errors"
	"fmt"
	"strings"
)

// Lines are hyperfine's command lines and the flags that expand them.
type Lines struct {
	Lines []string
	// Scan and List are --parameter-scan (NAME MIN MAX) and
	// --parameter-list (NAME VALUES), each as JoinMultiWord packed it;
	// Step is --parameter-step-size.
	Scan, List []string
	Step       string
	Names      []string // --command-name, once per command
	Shell      string   // runs each line with -c; "none": split into words
}

// Run is one command line ready to run.
type Run struct {
	Name   string
	Argv   []string
	Params []Value
}

// Runs expands the command lines over their parameters into the commands
// to run, through the shell or split into words.
func (l Lines) Runs() ([]Run, error) {
	for _, a := range l.Lines {
		if strings.TrimSpace(a) == "" {
			return nil, errors.New("an empty command line: give each command as one quoted argument")
		}
	}
	ps, err := l.parameters()
	if err != nil {
		return nil, err
	}
	cmds, err := Expand(l.Lines, l.Names, ps)
	if err != nil {
		return nil, err
	}
	runs := make([]Run, len(cmds))
	for i, c := range cmds {
		runs[i] = Run{Name: c.Name, Params: c.Params, Argv: []string{l.Shell, "-c", c.Line}}
		if l.Shell == "none" {
			if runs[i].Argv, err = SplitWords(c.Line); err != nil {
				return nil, err
			}
		}
	}
	return runs, nil
}

// parameters reads the scan (with its step) and the lists.
func (l Lines) parameters() ([]Param, error) {
	var ps []Param
	if len(l.Scan) > 1 {
		return nil, errors.New("--parameter-scan given twice: scan one parameter, and list others with --parameter-list")
	}
	for _, v := range l.Scan {
		w := strings.Split(v, Sep)
		if len(w) != 3 {
			return nil, fmt.Errorf("--parameter-scan takes NAME MIN MAX")
		}
		p, err := Scan(w[0], w[1], w[2], l.Step)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	if l.Step != "" && len(l.Scan) == 0 {
		return nil, errors.New("--parameter-step-size goes with --parameter-scan")
	}
	for _, v := range l.List {
		w := strings.Split(v, Sep)
		if len(w) != 2 {
			return nil, fmt.Errorf("--parameter-list takes NAME VALUES")
		}
		p, err := List(w[0], w[1])
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}
