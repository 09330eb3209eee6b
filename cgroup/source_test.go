package cgroup

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fakeCgroup makes a cgroup directory with the files choose looks at: its
// controllers, its processes, and whether cgpeak's user may write it (the
// owner write bit of each file stands for the kernel's permission check).
func fakeCgroup(t *testing.T, controllers string, procs []int, writable bool) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "session.scope")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var ps []string
	for _, p := range procs {
		ps = append(ps, strconv.Itoa(p))
	}
	mode := os.FileMode(0o644)
	if !writable {
		mode = 0o444
	}
	for name, content := range map[string]string{
		"cgroup.controllers":     controllers + "\n",
		"cgroup.procs":           strings.Join(ps, "\n"),
		"cgroup.subtree_control": "",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	if !writable {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
	}
	return dir
}

func fakeEnv(dir string, v2 bool, euid int, systemd bool, bus string) env {
	h := hostEnv(Hierarchy{V2: v2, Mount: filepath.Dir(dir), Self: dir})
	h.euid, h.pid, h.systemd, h.userBus = euid, 4242, systemd, bus
	h.writable = func(p string) bool {
		st, err := os.Stat(p)
		return err == nil && st.Mode().Perm()&0o200 != 0
	}
	return h
}

func TestChooseProvider(t *testing.T) {
	const bus = "unix:path=/run/user/1000/bus"
	for _, c := range []struct {
		name        string
		controllers string
		procs       []int
		writable    bool
		v2          bool
		euid        int
		systemd     bool
		bus         string
		from        string
		want        string // provider, or the start of the error's fix
	}{
		{"user in a delegated scope", "cpu memory pids", []int{4242}, true, true, 1000, true, bus, "", FromDelegated},
		{"delegated, no bus or systemd needed", "memory", []int{4242}, true, true, 1000, false, "", "", FromDelegated},
		{"user in a login session", "cpu memory pids", []int{4242, 17}, false, true, 1000, true, bus, "", FromSystemd},
		{"writable but without memory", "cpu pids", []int{4242}, true, true, 1000, true, bus, "", FromSystemd},
		{"writable but shared with the shell", "memory", []int{17, 4242}, true, true, 1000, true, bus, "", FromSystemd},
		{"root on systemd", "memory", []int{4242}, true, true, 0, true, "", "", FromSystemd},
		{"root without systemd", "memory", []int{4242}, true, true, 0, false, "", "", FromDirect},
		{"root on v1", "", []int{4242}, true, false, 0, true, "", "", FromDirect},
		{"user on v1", "", []int{4242}, true, false, 1000, true, bus, "", "error: memory is on cgroup v1"},
		{"user without a bus", "memory", []int{4242, 17}, false, true, 1000, true, "", "", "error: no cgroup delegated to you and no user D-Bus"},
		{"user without systemd", "memory", []int{4242}, false, true, 1000, false, "", "", "error: no cgroup delegated to you and no systemd"},
		{"forced delegated, not writable", "memory", []int{4242}, false, true, 1000, true, bus, FromDelegated, "error: cgpeak's cgroup"},
		{"forced delegated, no memory", "pids", []int{4242}, true, true, 1000, true, bus, FromDelegated, "error: cgpeak's cgroup"},
		{"forced systemd without a bus", "memory", []int{4242}, true, true, 1000, true, "", FromSystemd, "error: cannot ask systemd"},
		{"forced direct", "memory", []int{4242}, true, true, 1000, true, bus, FromDirect, FromDirect},
		{"unknown", "memory", []int{4242}, true, true, 1000, true, bus, "elsewhere", "error: unknown cgroup provider"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := fakeCgroup(t, c.controllers, c.procs, c.writable)
			got, err := choose(fakeEnv(dir, c.v2, c.euid, c.systemd, c.bus), c.from)
			if err != nil {
				got = "error: " + err.Error()
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error of more than one line: %q", err)
				}
			}
			if !strings.HasPrefix(got, c.want) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

// The error for a user without a bus names the fix.
func TestChooseNoBusNamesLinger(t *testing.T) {
	dir := fakeCgroup(t, "memory", []int{1}, false)
	_, err := choose(fakeEnv(dir, true, 1000, true, ""), "")
	if err == nil || !strings.Contains(err.Error(), "loginctl enable-linger") {
		t.Errorf("got %v, want the loginctl enable-linger fix", err)
	}
}

// The user bus: $DBUS_SESSION_BUS_ADDRESS, else a socket in $XDG_RUNTIME_DIR,
// else none (a directory named bus is no socket).
func TestUserBusAddress(t *testing.T) {
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/x")
	if got := userBusAddress(); got != "unix:path=/x" {
		t.Errorf("from the variable: %q", got)
	}
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	rt := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", rt)
	if got := userBusAddress(); got != "" {
		t.Errorf("no socket: %q", got)
	}
	if err := os.Mkdir(filepath.Join(rt, "bus"), 0o700); err != nil {
		t.Fatal(err)
	}
	if got := userBusAddress(); got != "" {
		t.Errorf("a directory is no bus: %q", got)
	}
	os.Remove(filepath.Join(rt, "bus"))
	l, err := net.Listen("unix", filepath.Join(rt, "bus"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got, want := userBusAddress(), "unix:path="+filepath.Join(rt, "bus"); got != want {
		t.Errorf("with the socket: %q, want %q", got, want)
	}
}
