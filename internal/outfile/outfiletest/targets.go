// Package outfiletest makes the destinations that a write must leave as they
// were (a read-only file, device node copies, a missing directory) and
// snapshots them, for the tests of outfile and of every cgpeak command.
package outfiletest

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Snapshot is what must not change about a destination: its type and
// permissions, device numbers, inode, size and content, and how many
// entries its directory has (no temporary file left beside it).
type Snapshot struct {
	Exists     bool
	Mode       uint32
	Ino, Rdev  uint64
	Size       int64
	Content    string
	DirEntries int
}

// Snap takes a destination's snapshot.
func Snap(path string) Snapshot {
	var s Snapshot
	ents, _ := os.ReadDir(filepath.Dir(path))
	s.DirEntries = len(ents)
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return s
	}
	s.Exists, s.Mode, s.Ino, s.Rdev, s.Size = true, st.Mode, st.Ino, st.Rdev, st.Size
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		b, _ := os.ReadFile(path)
		s.Content = string(b)
	}
	return s
}

// Names of the targets; Writable ones take a write (and stay as they were).
const (
	ReadOnly   = "read-only file"
	Missing    = "missing directory"
	DeviceNode = "device node copy"
	FullDevice = "full device"
)

// Targets makes each kind of destination in its own new directory under
// dir: a read-only file, a path in a missing directory, and as root a copy
// of /dev/null and of /dev/full made with mknod.
func Targets(t testing.TB, dir string) map[string]string {
	t.Helper()
	sub := func(name string) string {
		d := filepath.Join(dir, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	ro := filepath.Join(sub("ro"), "readonly.txt")
	if err := os.WriteFile(ro, []byte("keep me\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{ReadOnly: ro, Missing: filepath.Join(sub("missing"), "no-such-dir", "out")}
	if os.Geteuid() != 0 {
		t.Log("not root: no device node copies (mknod needs CAP_MKNOD)")
		return m
	}
	null, full := filepath.Join(sub("null"), "null"), filepath.Join(sub("full"), "full")
	if err := unix.Mknod(null, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatalf("mknod a copy of /dev/null: %v", err)
	}
	if err := unix.Mknod(full, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 7))); err != nil {
		t.Fatalf("mknod a copy of /dev/full: %v", err)
	}
	m[DeviceNode], m[FullDevice] = null, full
	return m
}
