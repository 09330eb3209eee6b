// Package vmtest runs a program (typically a `go test` binary) inside a QEMU
// VM booting a chosen kernel, so BPF and cgroup v2 code is tested on real
// kernels even where the host kernel cannot run it.
package vmtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Cgroup modes of the guest.
const (
	ModeV2 = "v2" // cgroup2 at /sys/fs/cgroup with +memory enabled at the root
	ModeV1 = "v1" // v1 memory hierarchy at /sys/fs/cgroup/memory, cgroup2 at /sys/fs/cgroup/unified (hybrid)
)

// Config describes one run of a program inside a VM.
type Config struct {
	Kernel  Kernel
	Mode    string
	Program string   // host path of the static binary to run
	Args    []string // its arguments
	Dir     string   // guest working directory (created)
	Env     []string // guest environment on top of PATH, HOME, TMPDIR
	// Files maps guest paths to host files or directories to ship.
	Files map[string]string

	CPUs     int
	MemoryMB int
	Accel    string        // "auto", "kvm" or "tcg"
	Boot     time.Duration // how long the guest may take to reach the program
	Timeout  time.Duration // the whole run
	Busybox  string        // host path of a static busybox
	Append   string        // extra kernel command line

	Stdout, Stderr io.Writer
	// Logf reports harness progress and infrastructure problems.
	Logf func(format string, args ...any)
}

// InfraError is a VM that failed before the program started (a panic or hang
// during boot): neither a pass nor a failure of the program.
type InfraError struct {
	Reason  string
	Console string // the tail of the serial console
}

func (e *InfraError) Error() string { return "vm infrastructure failure: " + e.Reason }

// Guest serial ports: the kernel console, the program's stdout and stderr,
// and a control channel carrying the start marker and the exit code, so that
// the program's output reaches the host byte for byte.
const (
	startMarker = "vmtest-start"
	exitMarker  = "vmtest-exit "
)

// Run boots the VM, runs the program and returns its exit code. A failure
// to boot is retried once, then returned as *InfraError.
func Run(ctx context.Context, cfg Config) (int, error) {
	if cfg.Mode == "" {
		cfg.Mode = ModeV2
	}
	if cfg.Mode != ModeV2 && cfg.Mode != ModeV1 && cfg.Mode != ModeSystemd {
		return 0, fmt.Errorf("unknown cgroup mode %q: use v2, v1 or systemd", cfg.Mode)
	}
	if err := cfg.Kernel.SupportsMode(cfg.Mode); err != nil {
		return 0, err
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = 2
	}
	if cfg.Mode == ModeSystemd {
		// The root file system lives in guest RAM; systemd is slower to boot.
		cfg.MemoryMB = max(cfg.MemoryMB, 1536)
		if cfg.Boot == 0 {
			cfg.Boot = systemdBoot * time.Second
		}
	}
	if cfg.MemoryMB == 0 {
		cfg.MemoryMB = 1024
	}
	if cfg.Boot == 0 {
		cfg.Boot = 90 * time.Second
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 20 * time.Minute
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.Busybox == "" {
		bb, err := findBusybox()
		if err != nil {
			return 0, err
		}
		cfg.Busybox = bb
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return 0, errors.New("qemu-system-x86_64 not found: apt-get install qemu-system-x86")
	}

	tmp, err := os.MkdirTemp("", "cgpeak-vmtest-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	initrd := filepath.Join(tmp, "initrd.cpio")
	if cfg.Mode == ModeSystemd {
		cache, err := CacheDir()
		if err != nil {
			return 0, err
		}
		rootfs, err := SystemdRootfs(ctx, cache, cfg.Logf)
		if err != nil {
			return 0, err
		}
		if err := writeSystemdInitramfs(initrd, rootfs, cfg); err != nil {
			return 0, fmt.Errorf("building the initramfs: %w", err)
		}
	} else if err := writeInitramfs(initrd, cfg); err != nil {
		return 0, fmt.Errorf("building the initramfs: %w", err)
	}

	accel := cfg.Accel
	if accel == "" || accel == "auto" {
		accel = autoAccel()
	}
	var last *InfraError
	for attempt := 1; attempt <= 2; attempt++ {
		code, err := boot(ctx, qemu, initrd, accel, cfg)
		var ie *InfraError
		if !errors.As(err, &ie) {
			return code, err
		}
		last = ie
		if accel == "kvm" && cfg.Accel != "kvm" {
			// KVM looked usable but the guest did not come up: TCG from now on,
			// and this attempt does not count.
			cfg.Logf("vmtest: kvm failed (%s); using tcg", ie.Reason)
			rememberKVMBroken()
			accel = "tcg"
			attempt--
			continue
		}
		if ctx.Err() != nil {
			break
		}
		cfg.Logf("vmtest: boot attempt %d failed: %s", attempt, ie.Reason)
	}
	return 0, last
}

func findBusybox() (string, error) {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if isStatic(p) {
			return p, nil
		}
	}
	return "", errors.New("no static busybox found: apt-get install busybox-static")
}

// isStatic reports whether an ELF file has no program interpreter.
func isStatic(p string) bool {
	b, err := os.ReadFile(p)
	if err != nil || len(b) < 4 || string(b[:4]) != "\x7fELF" {
		return false
	}
	return !strings.Contains(string(b[:min(len(b), 4096)]), "/lib64/ld-linux")
}

// shellQuote quotes s for the guest's busybox sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func initScript(cfg Config, program string) string {
	var b strings.Builder
	b.WriteString(`#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/usr/local/bin:/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp /run /root /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /dev/shm
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
`)
	if cfg.Mode == ModeV1 {
		b.WriteString(`mount -t tmpfs cgroup /sys/fs/cgroup
mkdir -p /sys/fs/cgroup/memory /sys/fs/cgroup/unified
mount -t cgroup -o memory memory /sys/fs/cgroup/memory || echo "vmtest: this kernel cannot mount the v1 memory controller"
mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified
`)
	} else {
		b.WriteString(`mount -t cgroup2 cgroup2 /sys/fs/cgroup
echo +memory > /sys/fs/cgroup/cgroup.subtree_control
`)
	}
	b.WriteString(`ip link set lo up 2>/dev/null
for t in ttyS1 ttyS2 ttyS3; do stty -F /dev/$t raw -echo 2>/dev/null; done
`)
	runProgram(&b, cfg, program)
	// The serial FIFOs drain before poweroff: sync waits for nothing here, so sleep a moment.
	b.WriteString("sleep 0.2\npoweroff -f\n")
	return b.String()
}

func writeInitramfs(dst string, cfg Config) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	c := newCPIO(f)
	for _, d := range []string{"/proc", "/sys", "/dev", "/tmp", "/root", "/usr/local/bin", "/sbin", "/usr/bin", "/usr/sbin"} {
		c.mkdirAll(d)
	}
	c.copyFile("/bin/busybox", cfg.Busybox)
	program, err := shipProgram(c, cfg)
	if err != nil {
		return err
	}
	c.file("/init", 0o755, []byte(initScript(cfg, program)))
	return c.close()
}

// runProgram writes the shell lines that export the guest environment, run
// the program with its output on the serial ports, and report its exit code;
// extra variables come before cfg.Env.
func runProgram(b *strings.Builder, cfg Config, program string, extra ...string) {
	env := []string{"HOME=/root", "TMPDIR=/tmp", "CGPEAK_VM_MODE=" + cfg.Mode, "CGPEAK_VM_RELEASE=" + cfg.Kernel.Release}
	env = append(append(env, extra...), cfg.Env...)
	for _, e := range env {
		if k, v, ok := strings.Cut(e, "="); ok {
			fmt.Fprintf(b, "export %s=%s\n", k, shellQuote(v))
		}
	}
	dir := cfg.Dir
	if dir == "" {
		dir = "/root"
	}
	fmt.Fprintf(b, "mkdir -p %[1]s; cd %[1]s\n", shellQuote(dir))
	fmt.Fprintf(b, "echo %s > /dev/ttyS3\n", startMarker)
	b.WriteString(shellQuote(program))
	for _, a := range cfg.Args {
		b.WriteString(" " + shellQuote(a))
	}
	b.WriteString(" </dev/null >/dev/ttyS1 2>/dev/ttyS2\n")
	fmt.Fprintf(b, "echo %s$? > /dev/ttyS3\n", exitMarker)
}

// shipProgram adds the program (as /vmtest/NAME, returned) and cfg.Files.
func shipProgram(c *cpioWriter, cfg Config) (string, error) {
	program := "/vmtest/" + filepath.Base(cfg.Program)
	c.copyFile(program, cfg.Program)
	guests := make([]string, 0, len(cfg.Files))
	for g := range cfg.Files {
		guests = append(guests, g)
	}
	sort.Strings(guests)
	for _, g := range guests {
		h := cfg.Files[g]
		st, err := os.Stat(h)
		if err != nil {
			return "", fmt.Errorf("shipping %s: %w", h, err)
		}
		if st.IsDir() {
			c.copyTree(g, h)
		} else {
			c.copyFile(g, h)
		}
	}
	return program, nil
}

// boot runs QEMU once.
func boot(ctx context.Context, qemu, initrd, accel string, cfg Config) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	type pipe struct{ r, w *os.File }
	var pipes [4]pipe
	for i := range pipes {
		r, w, err := os.Pipe()
		if err != nil {
			return 0, err
		}
		defer r.Close()
		defer w.Close()
		pipes[i] = pipe{r, w}
	}
	args := []string{
		"-nodefaults", "-display", "none", "-no-reboot",
		"-smp", strconv.Itoa(cfg.CPUs), "-m", strconv.Itoa(cfg.MemoryMB),
		"-kernel", cfg.Kernel.Vmlinuz, "-initrd", initrd,
		"-append", strings.TrimSpace("console=ttyS0 panic=-1 oops=panic loglevel=4 mitigations=off " + cfg.Append),
	}
	if accel == "kvm" {
		args = append(args, "-accel", "kvm", "-cpu", "host")
	} else {
		args = append(args, "-accel", "tcg,thread=multi", "-cpu", "max")
	}
	// Ports ttyS0..3 in order; QEMU reopens the inherited pipe ends by name.
	for i := range pipes {
		args = append(args, "-serial", fmt.Sprintf("file:/dev/fd/%d", 3+i))
	}
	cmd := exec.CommandContext(ctx, qemu, args...)
	cmd.ExtraFiles = []*os.File{pipes[0].w, pipes[1].w, pipes[2].w, pipes[3].w}
	var qerr strings.Builder
	cmd.Stderr = &qerr
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting qemu: %w", err)
	}
	for i := range pipes {
		pipes[i].w.Close()
	}

	console := &tail{max: 64 << 10}
	var wg sync.WaitGroup
	copyOut := func(dst io.Writer, src io.Reader) {
		defer wg.Done()
		if dst == nil {
			dst = io.Discard
		}
		_, _ = io.Copy(dst, src)
	}
	wg.Add(3)
	go copyOut(console, pipes[0].r)
	go copyOut(cfg.Stdout, pipes[1].r)
	go copyOut(cfg.Stderr, pipes[2].r)

	started := make(chan struct{})
	exitCode := make(chan int, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pipes[3].r)
		once := sync.Once{}
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			switch {
			case line == startMarker:
				once.Do(func() { close(started) })
			case strings.HasPrefix(line, exitMarker):
				if n, err := strconv.Atoi(strings.TrimPrefix(line, exitMarker)); err == nil {
					exitCode <- n
				}
			}
		}
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	bootWait := cfg.Boot
	if accel == "kvm" && cfg.Accel != "kvm" {
		// A KVM that hangs should cost little before TCG takes over.
		bootWait = 20 * time.Second
	}
	bootTimer := time.NewTimer(bootWait)
	defer bootTimer.Stop()
	var werr error
	ok := false
	for !ok {
		select {
		case <-started:
			ok = true
		case werr = <-waited:
			wg.Wait()
			return 0, &InfraError{Reason: fmt.Sprintf("the guest stopped before the program started (%v %s)", werr, strings.TrimSpace(qerr.String())), Console: console.String()}
		case <-bootTimer.C:
			_ = cmd.Process.Kill()
			<-waited
			wg.Wait()
			return 0, &InfraError{Reason: fmt.Sprintf("the guest did not start the program within %s", bootWait), Console: console.String()}
		}
	}
	werr = <-waited
	wg.Wait()
	select {
	case n := <-exitCode:
		return n, nil
	default:
	}
	if ctx.Err() != nil {
		return 0, fmt.Errorf("the program did not finish within %s; console:\n%s", cfg.Timeout, console.String())
	}
	// The program started but the guest died under it: that is the program's
	// failure (a kernel oops it caused, say), shown with the console.
	return 0, fmt.Errorf("the guest stopped while the program ran (%v); console:\n%s", werr, console.String())
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
