package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/cgpeak/cgpeak/internal/outfile"
)

// dest is a file the user named for cgpeak to write, with its flag.
type dest struct{ flag, path string }

// checkDests looks at every destination before any work begins, so a bad
// one costs no run; it touches none of them. Only one may be stdout (-):
// two would be interleaved there.
func checkDests(ds ...dest) error {
	var toStdout string
	for _, d := range ds {
		if d.path == "" {
			continue
		}
		if d.path == outfile.Stdout {
			if toStdout != "" {
				return fmt.Errorf("%s - and %s - both write to stdout: give one of them a file", toStdout, d.flag)
			}
			toStdout = d.flag
		}
		if err := outfile.Check(d.path); err != nil {
			return fmt.Errorf("%s %s: %w (name a file cgpeak may write)", d.flag, d.path, err)
		}
	}
	return nil
}

// emit writes a report through fill to d.path, or to fallback when no file
// is named. When the file cannot be written the report goes to fallback
// instead, so its figures are still shown, and emit returns exitWrite; a
// failed write to fallback returns exitWrite too (128+SIGPIPE for a closed
// pipe, as if the signal had ended cgpeak). 0 when all went well. A path
// of - is stdout, written as fallback is.
func emit(d dest, fallback io.Writer, fill func(io.Writer) error) int {
	if d.path == outfile.Stdout {
		d.path, fallback = "", os.Stdout
	}
	if d.path != "" {
		err := outfile.Write(d.path, fill)
		if err == nil {
			return 0
		}
		fmt.Fprintf(os.Stderr, "cgpeak: writing %s %s: %v (it is left as it was; the report follows here)\n", d.flag, d.path, err)
		fallback = os.Stderr
		if code := emit(dest{}, fallback, fill); code != 0 {
			return code
		}
		return exitWrite
	}
	w := &outfile.ErrWriter{W: fallback}
	err := fill(w)
	if err == nil {
		err = w.Err
	}
	return writeFailed(err, "the report")
}

// writeFailed turns an error writing to stdout or stderr into cgpeak's exit
// code: 0 for none.
func writeFailed(err error, what string) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, syscall.EPIPE):
		return 128 + int(syscall.SIGPIPE)
	}
	fmt.Fprintf(os.Stderr, "cgpeak: writing %s: %v\n", what, err)
	return exitWrite
}
