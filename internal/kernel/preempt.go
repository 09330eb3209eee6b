package kernel

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/sys/unix"
)

// Preemption models, as /sys/kernel/debug/sched/preempt names them.
const (
	PreemptNone      = "none"
	PreemptVoluntary = "voluntary"
	PreemptFull      = "full"
	PreemptLazy      = "lazy"
	PreemptRT        = "rt"
)

// Preemptible: a task can be preempted anywhere in the kernel outside a
// section that disables it, in the middle of a BPF program too.
func Preemptible(model string) bool {
	return model == PreemptFull || model == PreemptLazy || model == PreemptRT
}

// Preemption tells the running kernel's preemption model and where it
// was read: the scheduler's own debugfs file (the model in force, which
// preempt= at boot can change where the kernel is built with
// PREEMPT_DYNAMIC), else the kernel's build config (the model it boots
// with); "" when neither can be read.
func Preemption() (model, source string) {
	const debug = "/sys/kernel/debug/sched/preempt"
	if m := debugModel(os.ReadFile(debug)); m != "" {
		return m, debug
	}
	if m := debugModel(readUnmountedDebugfs("sched/preempt")); m != "" {
		return m, "debugfs sched/preempt"
	}
	rel := Release()
	for _, path := range []string{"/boot/config-" + rel, "/proc/config.gz"} {
		cfg, err := readConfig(path)
		if err != nil {
			continue
		}
		if m := configModel(cfg); m != "" {
			if bootModel := cmdlineModel(); bootModel != "" && cfg["CONFIG_PREEMPT_DYNAMIC"] == "y" && !cfg.lazyOnly() {
				return bootModel, path + " and /proc/cmdline"
			}
			return m, path
		}
	}
	return "", ""
}

// debugModel reads the model in force from sched/preempt, which lists the
// models the kernel offers with the current one in parentheses.
func debugModel(b []byte, err error) string {
	if err != nil {
		return ""
	}
	if m := regexp.MustCompile(`\((\w+)\)`).FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return ""
}

// readUnmountedDebugfs reads a debugfs file where debugfs is not mounted:
// it mounts debugfs on a directory of its own for the read, then unmounts
// it and removes the directory. Needs CAP_SYS_ADMIN, as tracing does.
func readUnmountedDebugfs(name string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "cgpeak-debugfs-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(dir)
	if err := unix.Mount("debugfs", dir, "debugfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return nil, err
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	return os.ReadFile(filepath.Join(dir, name))
}

type config map[string]string

// lazyOnly: built with lazy preemption and neither none nor voluntary, as
// Debian's 7.3 is: preempt= can only pick a model the kernel was built
// with, so it stays lazy (preempt=none and =voluntary were seen ignored).
func (c config) lazyOnly() bool {
	return c["CONFIG_PREEMPT_LAZY"] == "y" && c["CONFIG_PREEMPT_NONE"] != "y" && c["CONFIG_PREEMPT_VOLUNTARY"] != "y"
}

func configModel(c config) string {
	switch {
	case c["CONFIG_PREEMPT_RT"] == "y":
		return PreemptRT
	case c["CONFIG_PREEMPT_LAZY"] == "y":
		return PreemptLazy
	case c["CONFIG_PREEMPT"] == "y":
		return PreemptFull
	case c["CONFIG_PREEMPT_VOLUNTARY"] == "y":
		return PreemptVoluntary
	case c["CONFIG_PREEMPT_NONE"] == "y":
		return PreemptNone
	}
	return ""
}

func cmdlineModel() string {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return ""
	}
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, "preempt="); ok {
			return v
		}
	}
	return ""
}

func readConfig(path string) (config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		z, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		r = z
	}
	return parseConfig(r)
}

func parseConfig(r io.Reader) (config, error) {
	c := config{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if k, v, ok := bytes.Cut(line, []byte("=")); ok && bytes.HasPrefix(k, []byte("CONFIG_")) {
			c[string(k)] = string(v)
		}
	}
	return c, sc.Err()
}
