// Package outfile writes the files a user names (reports, exports, traces,
// plots) without ever losing what was there: a regular file is written to a
// temporary file beside it and renamed over it only once everything was
// written; a special file (a device, a FIFO, a terminal) is written in place
// and never truncated, replaced or removed. A failed write leaves the
// destination exactly as it was. The name "-" is standard output, written
// as it goes and never closed (a file named - is ./-).
package outfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrReadOnly: the destination is a regular file with no write permission.
// root could write it anyway; cgpeak takes the missing bits as the owner's
// wish that it stay as it is.
var ErrReadOnly = errors.New("the file is read-only")

// Stdout is the name that means standard output.
const Stdout = "-"

// target is what a name leads to: a regular file (or none yet), written by
// rename into real, or a special file written in place.
type target struct {
	real    string      // the path to write or rename onto, symlinks resolved
	special bool        // a device, FIFO or socket: written in place
	mode    fs.FileMode // the existing file's permissions, to keep
	exists  bool
	stdout  bool // Stdout: cgpeak's own standard output, special too
}

func resolve(path string) (target, error) {
	if path == "" {
		return target{}, errors.New("no file name")
	}
	if path == Stdout {
		return target{real: "/dev/stdout", special: true, exists: true, stdout: true}, nil
	}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// A new file: its directory must exist and take it. A dangling
		// symlink is written where it points, as a shell redirection would.
		real := path
		if l, lerr := os.Readlink(path); lerr == nil {
			if !filepath.IsAbs(l) {
				l = filepath.Join(filepath.Dir(path), l)
			}
			real = l
		}
		dir := filepath.Dir(real)
		dst, err := os.Stat(dir)
		if err != nil {
			return target{}, fmt.Errorf("directory %s: %w", dir, unwrapPath(err))
		}
		if !dst.IsDir() {
			return target{}, fmt.Errorf("%s is not a directory", dir)
		}
		if err := unix.Access(dir, unix.W_OK); err != nil {
			return target{}, fmt.Errorf("directory %s: %w", dir, err)
		}
		return target{real: real, mode: 0o666}, nil
	case err != nil:
		return target{}, unwrapPath(err)
	case st.IsDir():
		return target{}, errors.New("is a directory: name a file")
	case !st.Mode().IsRegular():
		// /dev/stdout, a FIFO, a device: it is opened at write time.
		if err := unix.Access(path, unix.W_OK); err != nil {
			return target{}, err
		}
		return target{real: path, special: true, exists: true}, nil
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return target{}, unwrapPath(err)
	}
	if st.Mode().Perm()&0o222 == 0 {
		return target{}, ErrReadOnly
	}
	if err := unix.Access(real, unix.W_OK); err != nil {
		return target{}, err
	}
	if err := unix.Access(filepath.Dir(real), unix.W_OK); err != nil {
		return target{}, fmt.Errorf("directory %s (needed to replace the file safely): %w", filepath.Dir(real), err)
	}
	return target{real: real, mode: st.Mode().Perm(), exists: true}, nil
}

// unwrapPath drops the *PathError's repetition of the path the caller names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Check says whether path could be written, without touching it: for
// destinations checked before the work that fills them begins.
func Check(path string) error {
	_, err := resolve(path)
	return err
}

// File is a destination being written. Nothing reaches a regular
// destination before Commit.
type File struct {
	path string
	t    target
	f    *os.File
	done bool
}

// Create opens path for writing: a temporary file beside a regular file
// (or where a new one goes), the file itself when it is special.
func Create(path string) (*File, error) {
	t, err := resolve(path)
	if err != nil {
		return nil, err
	}
	o := &File{path: path, t: t}
	if t.stdout {
		o.f = os.Stdout
		return o, nil
	}
	if t.special {
		// No O_TRUNC and no O_CREATE: a device or FIFO is written, not made.
		o.f, err = os.OpenFile(t.real, os.O_WRONLY, 0)
		if err != nil {
			return nil, unwrapPath(err)
		}
		return o, nil
	}
	o.f, err = os.CreateTemp(filepath.Dir(t.real), "."+filepath.Base(t.real)+".cgpeak-*")
	if err != nil {
		return nil, unwrapPath(err)
	}
	return o, nil
}

// Write writes to the temporary file (or the special file).
func (o *File) Write(p []byte) (int, error) { return o.f.Write(p) }

// WriteAt and Seek let a writer go back to its start (the trace header);
// a special file refuses them.
func (o *File) WriteAt(p []byte, off int64) (int, error) { return o.f.WriteAt(p, off) }

// Seek, see WriteAt.
func (o *File) Seek(off int64, whence int) (int64, error) {
	if o.t.special {
		return 0, errors.New("not seekable")
	}
	return o.f.Seek(off, whence)
}

// Commit makes what was written the destination's content: a regular file
// is synced and renamed over it, keeping the old file's permissions.
func (o *File) Commit() error {
	if o.done {
		return errors.New("already closed")
	}
	o.done = true
	if o.t.stdout {
		return nil
	}
	if o.t.special {
		return o.f.Close()
	}
	tmp := o.f.Name()
	mode := o.t.mode
	if !o.t.exists {
		mode = 0o666 &^ fs.FileMode(umask())
	}
	err := o.f.Chmod(mode)
	if err == nil {
		err = o.f.Sync()
	}
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, o.t.real)
	}
	if err != nil {
		os.Remove(tmp)
		return unwrapPath(err)
	}
	return nil
}

// Abort drops what was written: the temporary file goes, the destination
// stays as it was. Safe after Commit (it does nothing then).
func (o *File) Abort() {
	if o == nil || o.done {
		return
	}
	o.done = true
	if o.t.stdout {
		return
	}
	o.f.Close()
	if !o.t.special {
		os.Remove(o.f.Name())
	}
}

// Write writes a whole file through fill: committed when fill and every
// write succeed, else the destination is left as it was.
func Write(path string, fill func(io.Writer) error) error {
	o, err := Create(path)
	if err != nil {
		return err
	}
	ew := &ErrWriter{W: o}
	if err := fill(ew); err != nil {
		o.Abort()
		return err
	}
	if ew.Err != nil {
		o.Abort()
		return ew.Err
	}
	return o.Commit()
}

// ErrWriter keeps the first write error, so code that prints with fmt.Fprintf
// line by line can check once at the end; later writes are dropped.
type ErrWriter struct {
	W   io.Writer
	Err error
}

func (e *ErrWriter) Write(p []byte) (int, error) {
	if e.Err != nil {
		return 0, e.Err
	}
	n, err := e.W.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	e.Err = err
	return n, err
}

// umask reads the process umask from /proc (setting it to read it would
// race with other threads creating files); 022 where it cannot be read.
func umask() int {
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Umask:"); ok {
				if n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return int(n)
				}
			}
		}
	}
	return 0o022
}
