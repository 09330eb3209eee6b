package vmtest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// cpioWriter writes the "newc" cpio format the kernel unpacks as an initramfs.
// Uncompressed on purpose: under TCG the guest would spend longer inflating
// a gzip'd image than QEMU spends loading the raw one.
type cpioWriter struct {
	w    *bufio.Writer
	ino  uint32
	dirs map[string]bool
	err  error
}

func newCPIO(w io.Writer) *cpioWriter {
	return &cpioWriter{w: bufio.NewWriterSize(w, 1<<20), ino: 1, dirs: map[string]bool{"": true, ".": true, "/": true}}
}

func (c *cpioWriter) header(name string, mode uint32, size int) {
	if c.err != nil {
		return
	}
	c.ino++
	name = strings.TrimPrefix(name, "/")
	// Fields: magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize, check.
	_, c.err = fmt.Fprintf(c.w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, len(name)+1, 0)
	if c.err == nil {
		_, c.err = c.w.WriteString(name + "\x00")
	}
	c.pad(110 + len(name) + 1)
}

func (c *cpioWriter) pad(n int) {
	if c.err == nil && n%4 != 0 {
		_, c.err = c.w.Write(make([]byte, 4-n%4))
	}
}

// mkdirAll adds every missing parent directory of p, then p itself.
func (c *cpioWriter) mkdirAll(p string) {
	p = path.Clean("/" + p)
	if c.dirs[p] {
		return
	}
	c.mkdirAll(path.Dir(p))
	c.dirs[p] = true
	c.header(p, 0o040755, 0)
}

func (c *cpioWriter) file(p string, mode os.FileMode, data []byte) {
	c.mkdirAll(path.Dir(p))
	c.header(p, 0o100000|uint32(mode.Perm()), len(data))
	if c.err == nil {
		_, c.err = c.w.Write(data)
	}
	c.pad(len(data))
}

// copyFile adds a host file, keeping its permission bits.
func (c *cpioWriter) copyFile(p, host string) {
	if c.err != nil {
		return
	}
	data, err := os.ReadFile(host)
	if err != nil {
		c.err = err
		return
	}
	st, err := os.Stat(host)
	if err != nil {
		c.err = err
		return
	}
	c.file(p, st.Mode(), data)
}

// copyTree adds a host directory recursively (regular files and directories).
func (c *cpioWriter) copyTree(p, host string) {
	ents, err := os.ReadDir(host)
	if err != nil {
		c.err = err
		return
	}
	c.mkdirAll(p)
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	for _, e := range ents {
		switch {
		case e.IsDir():
			c.copyTree(path.Join(p, e.Name()), host+"/"+e.Name())
		case e.Type().IsRegular():
			c.copyFile(path.Join(p, e.Name()), host+"/"+e.Name())
		}
	}
}

func (c *cpioWriter) symlink(p, target string) {
	c.mkdirAll(path.Dir(p))
	c.header(p, 0o120777, len(target))
	if c.err == nil {
		_, c.err = c.w.WriteString(target)
	}
	c.pad(len(target))
}

func (c *cpioWriter) close() error {
	c.header("TRAILER!!!", 0, 0)
	if c.err != nil {
		return c.err
	}
	return c.w.Flush()
}
