package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cgpeak/cgpeak/internal/symbolize"
	"github.com/cgpeak/cgpeak/trace"
)

// workloadBin finds a test workload: shipped beside cgpeak in the VMs,
// built here otherwise.
func workloadBin(t *testing.T, cgpeak, name string) string {
	t.Helper()
	if p := filepath.Join(filepath.Dir(cgpeak), name); os.Getenv("CGPEAK_TEST_CGPEAK") != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is not shipped beside cgpeak (make guest builds it): %v", name, err)
		}
		return p
	}
	if name == "smallbig" {
		return buildSmallBig(t, t.TempDir())
	}
	root, _ := filepath.Abs("../..")
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./testdata/userstacks/goalloc")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", name, err, out)
	}
	return bin
}

func findTop(top []topFunction, name string) topFunction {
	for _, f := range top {
		if f.Function == name {
			return f
		}
	}
	return topFunction{}
}

// The workloads with a known answer, traced on each backend: the pages
// charged under big() and small() are 3:1 (within 5%, page tables
// included; their anon pages exactly 300 and 100), named from the trace
// after the workload exited, through the mappings and build ID the trace
// recorded; the Go workload's allocBig and allocSmall likewise.
func TestUserStacksKnownWorkloads(t *testing.T) {
	bs := tracingBackends(t)
	cgpeak, _ := build(t)
	for _, b := range bs {
		for _, w := range []struct {
			bin, small, big string
			smallAnon       uint64
		}{{"smallbig", "small", "big", 100}, {"goalloc", "main.allocSmall", "main.allocBig", 256}} {
			t.Run(b+"/"+w.bin, func(t *testing.T) {
				bin := workloadBin(t, cgpeak, w.bin)
				dir := t.TempDir()
				tf := filepath.Join(dir, "t.jsonl")
				r, code := runJSON(t, cgpeak, "--backend", b, "--trace-charges", "--trace-output", tf, "--", bin)
				if code != 0 || r.Trace == nil || r.Trace.Lost != 0 {
					t.Fatalf("exit %d, trace %+v", code, r.Trace)
				}
				pp := filepath.Join(dir, "p.pb.gz")
				top, end := profileOf(t, tf, profileOpts{top: 20, pprof: pp})
				small, big := findTop(top, w.small), findTop(top, w.big)
				t.Logf("%s: %s %d pages (%d with callees) %v, %s %d pages (%d) %v; user stacks %+v", b, w.small, small.SelfPages, small.CumPages, small.Kinds, w.big, big.SelfPages, big.CumPages, big.Kinds, end.UserStacks)
				// Go's allocator may clear memory it hands out: those pages
				// are charged in runtime functions below the caller.
				sp, bp := small.CumPages, big.CumPages
				if sp == 0 {
					t.Fatalf("no pages charged under %s: top %+v", w.small, top)
				}
				if ratio := float64(bp) / float64(sp); ratio < 3*0.95 || ratio > 3*1.05 {
					t.Errorf("%s:%s = %d:%d pages = %.3f, want 3 within 5%%", w.big, w.small, bp, sp, ratio)
				}
				if w.bin == "smallbig" && (small.Kinds["anon"] != w.smallAnon || big.Kinds["anon"] != 3*w.smallAnon) {
					t.Errorf("anon pages %d and %d, want %d and %d (the pages each touches)", small.Kinds["anon"], big.Kinds["anon"], w.smallAnon, 3*w.smallAnon)
				}
				if end == nil || end.UserStacks == nil || end.UserStacks.Walked == 0 {
					t.Errorf("end line's user stack account: %+v", end)
				}
				// The trace holds the build ID of what ran.
				want, err := symbolize.FileID(bin)
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := os.ReadFile(tf)
				if !holdsBuildID(t, raw, want) {
					t.Errorf("the trace lacks %s's build ID %s", bin, want)
				}
				noUserStackInExec(t, raw)
				p := parsePprof(t, pp)
				var bigBytes int64
				for _, s := range p.Sample {
					for _, l := range s.Location {
						if l.Line[0].Function.Name == w.big {
							bigBytes += s.Value[1]
							break
						}
					}
				}
				if bigBytes < int64(big.SelfPages)*int64(os.Getpagesize()) {
					t.Errorf("profile: %d bytes under %s, want at least its %d pages", bigBytes, w.big, big.SelfPages)
				}
			})
		}
	}
}

// holdsBuildID says whether a trace names a file by that build ID: in its
// header (the command), a process's mappings, or a user stack's frames.
func holdsBuildID(t *testing.T, raw []byte, id string) bool {
	t.Helper()
	r, err := trace.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := r.Next(); err != nil {
			break
		}
	}
	if _, ok := r.Paths[id]; ok {
		return true
	}
	for _, s := range r.UStacks {
		for _, f := range s.Frames {
			if f.BuildID == id {
				return true
			}
		}
	}
	return false
}
