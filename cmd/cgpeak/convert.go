package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/cgpeak/cgpeak/internal/outfile"
	"github.com/cgpeak/cgpeak/trace"
)

// convertCmd rewrites a trace in the other form. A subcommand of its own
// rather than an explain flag: explain prints a report, and a trace on the
// same stdout (or beside --json, --plot, --pprof) would mix two outputs
// and two sets of flags; convert also goes the other way, compacting an
// old JSON Lines trace, and writes its file as every output is written
// (whole or not at all).
func convertCmd(args []string) int {
	fs := pflag.NewFlagSet("convert", pflag.ContinueOnError)
	to := fs.String("to", string(trace.JSONL), "the form to write: jsonl (JSON Lines, one record a line) or binary")
	setUsage(fs, "Usage: cgpeak convert [--to jsonl|binary] IN OUT\n\nRewrites a charge trace (either form) as JSON Lines, to read with grep or jq,\nor as the compact binary form cgpeak records by default. OUT may be - for stdout.\n\nFlags:\n")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if fs.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "cgpeak: convert takes a trace to read and a file to write: cgpeak convert IN OUT")
		return exitUsage
	}
	f, err := trace.ParseFormat(*to)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak: --to:", err)
		return exitUsage
	}
	in, out := fs.Arg(0), fs.Arg(1)
	if err := checkDests(dest{"OUT", out}); err != nil {
		fmt.Fprintln(os.Stderr, "cgpeak:", err)
		return exitUsage
	}
	r, code := openTrace(in)
	if code != 0 {
		return code
	}
	defer r.Close()
	rd, err := trace.NewReader(r)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cgpeak: %s: %v\n", in, err)
		return exitBadTrace
	}
	var bad error // the input's, told apart from the output's
	err = outfile.Write(out, func(w io.Writer) error {
		err := convert(rd, w, f)
		if err != nil && !errors.As(err, new(*writeError)) {
			bad = err
		}
		return err
	})
	switch {
	case bad != nil:
		fmt.Fprintf(os.Stderr, "cgpeak: %s: %v (%s is left as it was)\n", in, bad, out)
		return exitBadTrace
	case err != nil:
		fmt.Fprintf(os.Stderr, "cgpeak: writing %s: %v (it is left as it was)\n", out, err)
		return exitWrite
	}
	return 0
}

// writeError marks a failure to write the converted trace.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// convert copies every record of rd to w in form f, the tables in their
// place among the events, so the copy reads as the original does.
func convert(rd *trace.Reader, w io.Writer, f trace.Format) error {
	h := rd.Header
	tw, err := trace.NewFormatWriter(w, h, f)
	if err != nil {
		return &writeError{err}
	}
	var werr error
	rd.OnTable(func(v any) {
		if werr != nil {
			return
		}
		switch t := v.(type) {
		case trace.Process:
			werr = tw.WriteProcess(t)
		case trace.UserStack:
			werr = tw.WriteUserStack(t)
		case trace.KernelStack:
			werr = tw.WriteKernelStack(t)
		}
	})
	for {
		e, err := rd.Next()
		if werr != nil {
			return &writeError{werr}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := tw.Write(e); err != nil {
			return &writeError{err}
		}
	}
	if rd.End == nil {
		// Cut short: so is the copy.
		if err := tw.Flush(); err != nil {
			return &writeError{err}
		}
		return nil
	}
	end := *rd.End
	if err := tw.Close(end); err != nil {
		return &writeError{err}
	}
	return nil
}

// openTrace opens a trace named on the command line, saying in one line
// what to give instead when it cannot be read.
func openTrace(path string) (*os.File, int) {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cgpeak: %v: give a trace file written by --trace-output\n", err)
		return nil, exitUsage
	}
	return f, 0
}
