// Package procmaps reads a process's executable file mappings and the build
// ID of each file, so its user stacks can be named after it exited.
package procmaps

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/cgpeak/cgpeak/internal/symbolize"
	"github.com/cgpeak/cgpeak/trace"
)

// ErrExited: the process was gone before its maps were read.
var ErrExited = errors.New("exited")

// Reader reads maps, hashing each distinct file once (every process of a
// workload maps the same libc).
type Reader struct {
	proc string // /proc, or a fake tree in tests
	ids  map[fileKey]idResult
}

type fileKey struct {
	dev, ino uint64
	mtime    int64
	size     int64
}

type idResult struct {
	id  string
	err error
}

// New reads from /proc.
func New() *Reader { return &Reader{proc: "/proc", ids: map[fileKey]idResult{}} }

// Read returns pid's executable file mappings with their build IDs.
func (r *Reader) Read(pid int) ([]trace.Mapping, error) {
	dir := fmt.Sprintf("%s/%d", r.proc, pid)
	f, err := os.Open(dir + "/maps")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return nil, ErrExited
		}
		return nil, err
	}
	defer f.Close()
	var out []trace.Mapping
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		m, ok := parseLine(sc.Text())
		if !ok {
			continue
		}
		m.BuildID, err = r.id(dir, m)
		if err != nil {
			m.Error = err.Error()
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil, ErrExited
		}
		return nil, err
	}
	if len(out) == 0 {
		// An exiting process's maps read empty: its mm is gone.
		return nil, ErrExited
	}
	return out, nil
}

// parseLine reads an executable file mapping from a maps line:
// "start-end perms offset dev inode path".
func parseLine(l string) (trace.Mapping, bool) {
	f := strings.Fields(l)
	if len(f) < 6 || len(f[1]) < 3 || f[1][2] != 'x' || !strings.HasPrefix(f[5], "/") {
		return trace.Mapping{}, false
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	if !ok {
		return trace.Mapping{}, false
	}
	start, err1 := strconv.ParseUint(lo, 16, 64)
	end, err2 := strconv.ParseUint(hi, 16, 64)
	off, err3 := strconv.ParseUint(f[2], 16, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return trace.Mapping{}, false
	}
	// The path is the rest of the line (it may hold blanks).
	path := l[strings.Index(l, f[5]):]
	path = strings.TrimSuffix(path, " (deleted)")
	return trace.Mapping{Start: start, End: end, Offset: off, Path: path}, true
}

// id reads the build ID of a mapped file through map_files, which opens
// what the process mapped even if the path now names another file or none.
func (r *Reader) id(dir string, m trace.Mapping) (string, error) {
	p := fmt.Sprintf("%s/map_files/%x-%x", dir, m.Start, m.End)
	if _, err := os.Stat(p); err != nil {
		p = dir + "/root" + m.Path // map_files needs CAP_SYS_ADMIN
	}
	st, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	k := fileKey{mtime: st.ModTime().UnixNano(), size: st.Size()}
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		k.dev, k.ino = s.Dev, s.Ino
	}
	if res, ok := r.ids[k]; ok {
		return res.id, res.err
	}
	id, err := symbolize.FileID(p)
	r.ids[k] = idResult{id, err}
	return id, err
}
