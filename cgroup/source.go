package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Where a run's cgroups come from.
const (
	FromAuto      = "auto"
	FromDelegated = "delegated" // a cgroup cgpeak already sits in and may manage
	FromSystemd   = "systemd"   // a transient scope from the systemd manager
	FromDirect    = "direct"    // beside cgpeak's own cgroup (root without systemd, and v1)
)

// Providers lists the names Options.From accepts.
var Providers = []string{FromAuto, FromDelegated, FromSystemd, FromDirect}

// Options say how Acquire finds the place for a run's cgroups.
type Options struct {
	From        string // one of Providers; "" is auto
	Description string // names the measured command, for the systemd unit
}

// SetupError is a place for cgroups that cannot be had; its text names the fix.
type SetupError struct{ Msg string }

func (e *SetupError) Error() string { return e.Msg }

func setupErr(format string, a ...any) error { return &SetupError{Msg: fmt.Sprintf(format, a...)} }

// Source is where this cgpeak makes its runs' leaves. Close it on every way
// out: it gives back what Acquire took (the leaf cgpeak moved itself into,
// the memory controller it enabled, the systemd connection).
type Source struct {
	H Hierarchy // H.Base is where leaves go, H.From says how it was had

	self    string // the leaf cgpeak moved itself into, "" if it did not move
	origin  string // the cgroup cgpeak came from
	enabled bool   // cgpeak enabled memory in H.Base's cgroup.subtree_control
	scope   *scope
}

// Acquire finds or makes the cgroup a run's leaves go under, picking the
// provider automatically unless o.From names one.
func Acquire(o Options) (*Source, error) {
	h, err := FindMemory()
	if err != nil {
		return nil, &SetupError{Msg: err.Error()}
	}
	e := hostEnv(h)
	from, err := choose(e, o.From)
	if err != nil {
		return nil, err
	}
	switch from {
	case FromDirect:
		parent, _ := h.Parent()
		h.Provider = FromDirect
		h.From = "direct: a cgroup made in " + parent
		return &Source{H: h}, nil
	case FromDelegated:
		s, err := delegate(h, h.Self)
		if err != nil {
			return nil, err
		}
		s.H.Provider = FromDelegated
		s.H.From = "delegated subtree " + h.Self
		return s, nil
	}
	return systemdSource(h, e, o.Description)
}

// Provider says which provider Acquire would pick for from (auto or a
// name), or the error it would fail with, without acquiring anything: what
// `cgpeak probe` tells before a run.
func Provider(from string) (string, error) {
	h, err := FindMemory()
	if err != nil {
		return "", &SetupError{Msg: err.Error()}
	}
	return choose(hostEnv(h), from)
}

// env is what choose looks at, so fake trees can test it.
type env struct {
	euid        int
	h           Hierarchy
	writable    func(path string) bool
	controllers func(dir string) []string
	procs       func(dir string) []int
	pid         int
	systemd     bool   // systemd runs as the init system
	userBus     string // the user bus address, "" if none
}

func hostEnv(h Hierarchy) env {
	return env{
		euid: os.Geteuid(),
		h:    h,
		writable: func(p string) bool {
			return unix.Access(p, unix.W_OK) == nil
		},
		controllers: func(dir string) []string {
			b, _ := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
			return strings.Fields(string(b))
		},
		procs: func(dir string) []int {
			l := Leaf{Path: dir}
			p, _ := l.Procs()
			return p
		},
		pid:     os.Getpid(),
		systemd: isDir("/run/systemd/system"),
		userBus: userBusAddress(),
	}
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// userBusAddress is the user's D-Bus: $DBUS_SESSION_BUS_ADDRESS, else the
// socket systemd's user manager (dbus-user-session) puts in $XDG_RUNTIME_DIR.
func userBusAddress() string {
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" && a != "autolaunch:" {
		return a
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		if st, err := os.Stat(filepath.Join(d, "bus")); err == nil && st.Mode()&os.ModeSocket != 0 {
			return "unix:path=" + filepath.Join(d, "bus")
		}
	}
	return ""
}

// delegatedWhy says why dir is not a subtree cgpeak may manage, "" if it is:
// cgpeak must be able to write its directory, cgroup.procs and
// cgroup.subtree_control, memory must be offered to it, and it must hold
// no process but cgpeak (v2 forbids processes beside controlled children).
func (e env) delegatedWhy(dir string) string {
	for _, p := range []string{dir, filepath.Join(dir, "cgroup.procs"), filepath.Join(dir, "cgroup.subtree_control")} {
		if !e.writable(p) {
			return fmt.Sprintf("%s is not writable by you", p)
		}
	}
	if !has(e.controllers(dir), "memory") {
		return fmt.Sprintf("the memory controller is not delegated to %s (not in its cgroup.controllers)", dir)
	}
	for _, p := range e.procs(dir) {
		if p != e.pid {
			return fmt.Sprintf("%s holds other processes than cgpeak (pid %d); run cgpeak as its only process, e.g. systemd-run --user --scope -p Delegate=yes cgpeak ...", dir, p)
		}
	}
	return ""
}

// choose picks the provider: a delegated subtree when cgpeak already sits in
// one (not for root, who can write anywhere); else systemd's user manager, or
// its system manager for root (systemd asks programs not to make cgroups
// beside its own); else, for root, directly beside cgpeak's cgroup.
func choose(e env, from string) (string, error) {
	why := "" // why systemd cannot be asked
	switch {
	case !e.systemd:
		why = "systemd is not the init system here"
	case e.euid != 0 && e.userBus == "":
		why = "no user D-Bus: $DBUS_SESSION_BUS_ADDRESS is unset and there is no $XDG_RUNTIME_DIR/bus (no systemd user manager for this session)"
	}
	switch from {
	case "", FromAuto:
	case FromDirect:
		return FromDirect, nil
	case FromDelegated:
		if !e.h.V2 {
			return "", setupErr("a delegated subtree needs cgroup v2, and memory is on cgroup v1 here: run as root")
		}
		if w := e.delegatedWhy(e.h.Self); w != "" {
			return "", setupErr("cgpeak's cgroup %s is not a delegated subtree: %s", e.h.Self, w)
		}
		return FromDelegated, nil
	case FromSystemd:
		if !e.h.V2 {
			return "", setupErr("memory is on cgroup v1 here: systemd scopes give memory only on cgroup v2; run as root with the direct provider")
		}
		if why != "" {
			return "", setupErr("cannot ask systemd for a scope: %s; %s", why, busFix(e))
		}
		return FromSystemd, nil
	default:
		return "", setupErr("unknown cgroup provider %q: use one of %s", from, strings.Join(Providers, ", "))
	}
	if !e.h.V2 {
		if e.euid == 0 {
			return FromDirect, nil
		}
		return "", setupErr("memory is on cgroup v1 here, where only root can make memory cgroups: run as root (sudo), or boot with systemd.unified_cgroup_hierarchy=1 for cgroup v2")
	}
	if e.euid != 0 && e.delegatedWhy(e.h.Self) == "" {
		return FromDelegated, nil
	}
	if why == "" {
		return FromSystemd, nil
	}
	if e.euid == 0 {
		return FromDirect, nil
	}
	if !e.systemd {
		return "", setupErr("no cgroup delegated to you and %s to ask for one: run as root, or in a cgroup delegated to you (%s)", "no systemd", e.delegatedWhy(e.h.Self))
	}
	return "", setupErr("no cgroup delegated to you and %s; %s", why, busFix(e))
}

func busFix(e env) string {
	if e.euid != 0 && e.systemd {
		return "start your user manager with `loginctl enable-linger $USER` (then log in again), or run from a session with one"
	}
	return "run as root"
}

// delegate makes dir, a cgroup cgpeak sits in and may manage, the parent of
// the runs' leaves: cgpeak moves itself into a leaf of its own (v2 forbids
// processes beside controlled children) and enables memory for the children.
func delegate(h Hierarchy, dir string) (*Source, error) {
	CleanStale(dir)
	s := &Source{H: h, origin: h.Self}
	s.H.Base = dir
	self := filepath.Join(dir, fmt.Sprintf("%s%d-self", NamePrefix, os.Getpid()))
	if err := os.Mkdir(self, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, setupErr("making cgpeak's own leaf in %s: %v", dir, err)
	}
	if err := os.WriteFile(filepath.Join(self, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
		_ = syscall.Rmdir(self)
		return nil, setupErr("moving cgpeak into its own leaf %s: %v", self, err)
	}
	s.self = self
	s.H.Self = self
	b, _ := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if !has(strings.Fields(string(b)), "memory") {
		if err := enableMemory(dir); err != nil {
			_ = s.Close()
			return nil, &SetupError{Msg: err.Error()}
		}
		s.enabled = true
	}
	return s, nil
}

// Close gives back what Acquire took. The leaves of the runs must be gone.
// When another cgpeak still shares the subtree, the controller stays enabled
// and this cgpeak's empty leaf is left to the next run's clean-up.
func (s *Source) Close() error {
	var errs []error
	if s.self != "" {
		others := false
		ents, _ := os.ReadDir(s.H.Base)
		for _, e := range ents {
			if e.IsDir() && strings.HasPrefix(e.Name(), NamePrefix) && filepath.Join(s.H.Base, e.Name()) != s.self {
				others = true
			}
		}
		if !others {
			if s.enabled {
				if err := os.WriteFile(filepath.Join(s.H.Base, "cgroup.subtree_control"), []byte("-memory"), 0); err != nil {
					errs = append(errs, fmt.Errorf("disabling memory in %s: %w", s.H.Base, err))
				}
			}
			if err := os.WriteFile(filepath.Join(s.origin, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
				errs = append(errs, fmt.Errorf("moving cgpeak back to %s: %w", s.origin, err))
			} else if err := syscall.Rmdir(s.self); err != nil {
				errs = append(errs, fmt.Errorf("removing cgpeak's own leaf %s: %w", s.self, err))
			}
		}
	}
	if s.scope != nil {
		s.scope.close()
	}
	return errors.Join(errs...)
}
