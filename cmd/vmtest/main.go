// Command vmtest runs a program inside a QEMU VM booting a Debian kernel, as
// `go test -exec` expects: vmtest [flags] PROGRAM [ARGS...]. The program's
// stdout, stderr and exit code come back unchanged; a VM that fails to boot
// twice is an infrastructure failure (exit 4), never a test result.
//
//	go test -exec "$PWD/bin/vmtest --kernel bookworm" ./cgroup/
//	vmtest fetch bookworm trixie-backports
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/cgpeak/cgpeak/vmtest"
)

const (
	exitUsage = 2
	exitInfra = 4
	exitOther = 1
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) > 0 && args[0] == "fetch" {
		return fetch(args[1:])
	}
	if len(args) == 3 && args[0] == "supports" {
		return supports(args[1], args[2])
	}
	fs := pflag.NewFlagSet("vmtest", pflag.ContinueOnError)
	fs.SetInterspersed(false) // everything after the program belongs to it
	kernel := fs.String("kernel", os.Getenv("CGPEAK_VM_KERNEL"), "suite (bookworm, trixie-backports, bullseye, trixie) or path to a vmlinuz; default $CGPEAK_VM_KERNEL")
	mode := fs.String("mode", envOr("CGPEAK_VM_MODE", vmtest.ModeV2), "guest cgroup layout: v2 (memory on cgroup2) or v1 (v1 memory hierarchy, cgroup2 beside it)")
	cpus := fs.Int("cpus", 2, "guest CPUs")
	mem := fs.Int("memory", 1024, "guest memory in MiB")
	accel := fs.String("accel", "auto", "auto (KVM where it works, else TCG), kvm or tcg")
	bin := fs.StringArray("bin", nil, "ship the files of this host directory into the guest's /usr/local/bin (repeatable)")
	files := fs.StringArray("file", nil, "ship HOST to GUEST, as HOST:GUEST (repeatable)")
	env := fs.StringArray("env", nil, "set KEY=VALUE in the guest (repeatable); CGPEAK_* variables of the host pass through")
	timeout := fs.Duration("timeout", 20*time.Minute, "limit for the whole run")
	quiet := fs.BoolP("quiet", "q", false, "no progress messages")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: vmtest [flags] PROGRAM [ARGS...]\n       vmtest fetch [SUITE...]\n       vmtest supports KERNEL MODE\n\nRuns a static PROGRAM in a QEMU VM booting a Debian kernel (go test -exec style).\n\n%s", fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "vmtest:", err)
		return exitUsage
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitUsage
	}
	if *kernel == "" {
		fmt.Fprintln(os.Stderr, "vmtest: no kernel: pass --kernel bookworm (or another suite, or a vmlinuz path)")
		return exitUsage
	}
	logf := func(format string, a ...any) {
		if !*quiet {
			fmt.Fprintf(os.Stderr, format+"\n", a...)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cache, err := vmtest.CacheDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmtest:", err)
		return exitOther
	}
	k, err := vmtest.ResolveKernel(ctx, *kernel, cache, logf)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmtest:", err)
		return exitInfra
	}

	cfg := vmtest.Config{
		Kernel: k, Mode: *mode, Program: fs.Arg(0), Args: fs.Args()[1:],
		CPUs: *cpus, MemoryMB: *mem, Accel: *accel, Timeout: *timeout,
		Files: map[string]string{}, Stdout: os.Stdout, Stderr: os.Stderr, Logf: logf,
	}
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, "CGPEAK_") && !strings.HasPrefix(e, "CGPEAK_VM_") {
			cfg.Env = append(cfg.Env, e)
		}
	}
	cfg.Env = append(cfg.Env, *env...)
	cfg.Env = append(cfg.Env, "CGPEAK_VM="+*kernel)
	for _, d := range *bin {
		ents, err := os.ReadDir(d)
		if err != nil {
			fmt.Fprintln(os.Stderr, "vmtest: --bin:", err)
			return exitUsage
		}
		for _, e := range ents {
			if e.Type().IsRegular() {
				cfg.Files["/usr/local/bin/"+e.Name()] = filepath.Join(d, e.Name())
			}
		}
	}
	for _, f := range *files {
		h, g, ok := strings.Cut(f, ":")
		if !ok || !strings.HasPrefix(g, "/") {
			fmt.Fprintf(os.Stderr, "vmtest: --file %q: want HOST:/GUEST/PATH\n", f)
			return exitUsage
		}
		cfg.Files[g] = h
	}
	// go test runs a test binary in its package directory: mirror that, with
	// the testdata directories the tests read, under /src in the guest.
	if root, rel, ok := moduleDir(); ok {
		cfg.Dir = filepath.Join("/src", rel)
		for _, td := range []string{filepath.Join(root, "testdata"), filepath.Join(root, rel, "testdata")} {
			if st, err := os.Stat(td); err == nil && st.IsDir() {
				r, _ := filepath.Rel(root, td)
				cfg.Files[filepath.Join("/src", r)] = td
			}
		}
	}

	logf("vmtest: %s on %s (%s), cgroup %s", filepath.Base(cfg.Program), k.Release, *kernel, *mode)
	code, err := vmtest.Run(ctx, cfg)
	var ie *vmtest.InfraError
	switch {
	case errors.As(err, &ie):
		fmt.Fprintf(os.Stderr, "vmtest: INFRASTRUCTURE FAILURE on %s (%s), not a test result: %s\n--- console ---\n%s\n--- end console ---\n", *kernel, k.Release, ie.Reason, ie.Console)
		return exitInfra
	case err != nil:
		fmt.Fprintln(os.Stderr, "vmtest:", err)
		return exitOther
	}
	return code
}

// supports exits 0 when KERNEL can run guests in MODE, else prints why.
func supports(kernel, mode string) int {
	cache, err := vmtest.CacheDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmtest:", err)
		return exitOther
	}
	k, err := vmtest.ResolveKernel(context.Background(), kernel, cache, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmtest:", err)
		return exitInfra
	}
	if err := k.SupportsMode(mode); err != nil {
		fmt.Println(err)
		return exitOther
	}
	return 0
}

func fetch(suites []string) int {
	if len(suites) == 0 {
		suites = vmtest.RequiredSuites
	}
	cache, err := vmtest.CacheDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmtest:", err)
		return exitOther
	}
	logf := func(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) }
	for _, s := range suites {
		if s == vmtest.ModeSystemd {
			img, err := vmtest.SystemdRootfs(context.Background(), cache, logf)
			if err != nil {
				fmt.Fprintln(os.Stderr, "vmtest:", err)
				return exitInfra
			}
			fmt.Printf("%s\t%s\t%s\n", s, "bookworm", img)
			continue
		}
		k, err := vmtest.ResolveKernel(context.Background(), s, cache, logf)
		if err != nil {
			fmt.Fprintln(os.Stderr, "vmtest:", err)
			return exitInfra
		}
		fmt.Printf("%s\t%s\t%s\n", s, k.Release, k.Vmlinuz)
	}
	return 0
}

// moduleDir finds the module root above the working directory and the
// working directory's path relative to it.
func moduleDir() (root, rel string, ok bool) {
	wd, err := os.Getwd()
	if err != nil {
		return "", "", false
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			rel, _ = filepath.Rel(d, wd)
			return d, rel, true
		}
		if d == filepath.Dir(d) {
			return "", "", false
		}
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
