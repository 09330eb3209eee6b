// Package probe finds what this machine offers cgpeak (memory cgroups,
// peak files, BTF, the tracing backends, the per-CPU stocks...) and says what
// cgpeak will do with it: the verdict cgpeak probe prints.
package probe

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"

	"github.com/cgpeak/cgpeak/cgroup"
	"github.com/cgpeak/cgpeak/internal/kbtf"
	"github.com/cgpeak/cgpeak/internal/kernel"
	"github.com/cgpeak/cgpeak/loader"
)

// Probe is `cgpeak probe --json`.
type Probe struct {
	Kernel   string   `json:"kernel"`
	Features []Entry  `json:"features"`
	Verdict  []string `json:"what_cgpeak_will_do"`
}

// Entry is one feature: yes, no, or unknown (the probe could not tell).
type Entry struct {
	Name   string `json:"name"`
	State  string `json:"state"`
	Detail string `json:"detail"`
}

func state(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// Run probes the machine.
func Run() Probe {
	p := Probe{Kernel: kernel.Release()}
	add := func(name string, ok bool, detail string) {
		p.Features = append(p.Features, Entry{name, state(ok), detail})
	}
	h, herr := cgroup.FindMemory()
	peakFile := false
	switch {
	case herr != nil:
		add("memory cgroup", false, herr.Error())
	case h.V2:
		add("memory cgroup", true, "cgroup v2 at "+h.Mount)
		// The root cgroup has no memory.peak: judge by our own cgroup, or
		// by the kernel version when we sit in the root.
		detail := "v2 peak file in " + h.Self
		if filepath.Clean(h.Self) == filepath.Clean(h.Mount) {
			peakFile, detail = kernel.Since(p.Kernel, kernel.PeakFile), "v2 peak file of non-root cgroups (Linux "+kernel.PeakFile.String()+"+)"
		} else {
			peakFile = fileIn(h.Self, "memory.peak")
		}
		add("memory.peak", peakFile, detail)
		add("fd-local peak reset", kernel.Since(p.Kernel, kernel.PeakFileReset), "writing memory.peak resets a per-fd watermark (Linux "+kernel.PeakFileReset.String()+"+)")
	default:
		add("memory cgroup", true, "cgroup v1 memory hierarchy at "+h.Mount+" (hybrid or legacy)")
		peakFile = fileIn(h.Self, "memory.max_usage_in_bytes")
		add("memory.max_usage_in_bytes", peakFile, "v1 peak file")
	}
	spec, berr := kbtf.Kernel()
	add("kernel BTF", berr == nil, errOr(berr, "/sys/kernel/btf/vmlinux (CO-RE, fentry)"))
	kp := loader.ProbeKprobe()
	add("kprobe", kp.OK, kp.Detail)
	capable := CanTrace()
	// Without the capabilities every load fails with EPERM, which says
	// nothing of the kernel: those probes are not tried.
	const notTried = "not tried: loading BPF programs needs root (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN)"
	fe, stocks := loader.Answer{Detail: notTried}, loader.Answer{Detail: notTried}
	if capable {
		fe, stocks = loader.ProbeFentry(spec), loader.ProbeStocks(spec)
	}
	fs := state(fe.OK)
	if !fe.Known {
		fs = "unknown"
	}
	p.Features = append(p.Features, Entry{"fentry/fexit", fs, fe.Detail})
	if capable {
		add("per-CPU stocks readable", stocks.OK, stocks.Detail)
		rb := features.HaveMapType(ebpf.RingBuf)
		add("BPF ring buffer", rb == nil, errOr(rb, "Linux 5.8+"))
	} else {
		p.Features = append(p.Features, Entry{"per-CPU stocks readable", "unknown", notTried}, Entry{"BPF ring buffer", "unknown", notTried})
	}
	events := ""
	for _, d := range []string{"/sys/kernel/tracing/events/", "/sys/kernel/debug/tracing/events/"} {
		if _, err := os.Stat(d); err == nil {
			events = d
			break
		}
	}
	tp := func(name, what string) {
		if events == "" {
			p.Features = append(p.Features, Entry{"tracepoint " + name, "unknown", what + "; tracefs is not mounted (mount -t tracefs tracefs /sys/kernel/tracing)"})
			return
		}
		_, err := os.Stat(events + strings.ReplaceAll(name, ":", "/"))
		add("tracepoint "+name, err == nil, what)
	}
	tpa := loader.Answer{Detail: notTried}
	if capable {
		tpa = loader.ProbeTracepoint(spec)
	}
	tps := state(tpa.OK)
	if !tpa.Known {
		tps = "unknown"
	}
	p.Features = append(p.Features, Entry{"memcg stat tracepoints", tps, tpa.Detail + " (the tracepoint backend, Linux 6.13+)"})
	tp("kmem:rss_stat", "per-mm RSS counter changes")
	add("root", os.Geteuid() == 0, fmt.Sprintf("euid %d", os.Geteuid()))
	if lock, err := os.ReadFile("/sys/kernel/security/lockdown"); err != nil {
		p.Features = append(p.Features, Entry{"lockdown off", "unknown", "securityfs lockdown file unreadable: " + err.Error()})
	} else {
		l := strings.TrimSpace(string(lock))
		add("lockdown off", strings.Contains(l, "[none]"), "lockdown: "+l)
	}

	provider, perr := cgroup.Provider(cgroup.FromAuto)
	if herr == nil && perr != nil {
		// What `cgpeak run` would say and exit 3 with.
		p.Verdict = append(p.Verdict, "not measure: "+perr.Error())
	} else if herr == nil {
		src := "memory.peak"
		if !h.V2 {
			src = "memory.max_usage_in_bytes"
		}
		switch {
		case peakFile:
			p.Verdict = append(p.Verdict, "measure each run in a fresh cgroup ("+provider+" provider) and report its peak from "+src)
		case h.V2:
			p.Verdict = append(p.Verdict, "measure each run in a fresh cgroup; this kernel has no memory.peak, so report the memcg's watermark read by BPF (as root), else a lower bound sampled from memory.current")
		default:
			p.Verdict = append(p.Verdict, "measure each run in a fresh cgroup, but report the cgroup peak as missing: this kernel has no "+src)
		}
	} else {
		p.Verdict = append(p.Verdict, "not measure cgroup memory: "+herr.Error())
	}
	if !capable {
		p.Verdict = append(p.Verdict, "not trace charges: loading BPF programs needs root (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN), and this process has neither: run `sudo cgpeak run --trace -- CMD`")
		return p
	}
	switch b := loader.ProbeBackend(spec); {
	case berr != nil:
		p.Verdict = append(p.Verdict, "not trace charges: no kernel BTF (pass --kernel-btf FILE)")
	case b == loader.Fentry:
		p.Verdict = append(p.Verdict, "trace charges with fentry/fexit (--trace)", summaryVerdict(stocks))
	case b == loader.Kprobe:
		p.Verdict = append(p.Verdict, "trace charges with kprobes (--trace): fentry is not available: "+fe.Detail, summaryVerdict(stocks))
	case b == loader.Tracepoint:
		p.Verdict = append(p.Verdict, "trace charges with the memcg stat tracepoints (--trace): "+kp.Detail+"; and "+fe.Detail+"; the trace sees stat updates, not charge requests, and the stocks only as their total")
	default:
		p.Verdict = append(p.Verdict, "not trace charges: "+kp.Detail+"; "+fe.Detail+"; and "+tpa.Detail+" (run cgpeak run --trace inside a VM with a stock kernel, see make vmtest)")
	}
	return p
}

func fileIn(dir, name string) bool {
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil
}

func errOr(err error, ok string) string {
	if err != nil {
		return err.Error()
	}
	return ok
}

func summaryVerdict(stocks loader.Answer) string {
	if stocks.OK {
		return "in summary mode, read the per-CPU stocks from the kernel: no program runs on a fault the stock serves"
	}
	return "in summary mode, probe every charge request: the per-CPU stocks cannot be read (" + stocks.Detail + ")"
}

// CanTrace: this process may load tracing programs: root, or CAP_BPF with
// CAP_PERFMON (5.8+), or CAP_SYS_ADMIN. Without them every BPF load fails
// with EPERM, which the kernel also gives for lockdown: the simpler cause
// is said first.
func CanTrace() bool {
	if os.Geteuid() == 0 {
		return true
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	has := func(c uint) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	return has(unix.CAP_SYS_ADMIN) || (has(unix.CAP_BPF) && has(unix.CAP_PERFMON))
}
