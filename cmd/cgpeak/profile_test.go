package main

import (
	"bytes"
	"debug/elf"
	"fmt"
	"github.com/cgpeak/cgpeak/internal/chargeprof"
	"github.com/cgpeak/cgpeak/internal/replay"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/cgpeak/cgpeak/analysis"
	"github.com/cgpeak/cgpeak/internal/procmaps"
	"github.com/cgpeak/cgpeak/internal/symbolize"
	"github.com/cgpeak/cgpeak/trace"
)

func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed: cannot build or inspect the test workload", name)
	}
}

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	needTool(t, name)
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// symAddr is a function's address and size by nm.
func symAddr(t *testing.T, bin, fn string) (addr, size uint64) {
	t.Helper()
	for _, l := range strings.Split(runTool(t, "nm", "-S", bin), "\n") {
		f := strings.Fields(l)
		if len(f) == 4 && f[3] == fn {
			a, _ := strconv.ParseUint(f[0], 16, 64)
			s, _ := strconv.ParseUint(f[1], 16, 64)
			return a, s
		}
	}
	t.Fatalf("nm: no %s in %s", fn, bin)
	return 0, 0
}

// liveMappings starts bin stopped at its first instruction (ptrace) and
// reads its mappings the way the tracer does, from the kernel's own maps.
func liveMappings(t *testing.T, bin string) []trace.Mapping {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Ptrace: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	// Start returns once exec closed the child's close-on-exec pipe, which
	// is before the kernel maps the new program: wait for the stop a traced
	// child makes at the end of exec, when its mappings are all there.
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(cmd.Process.Pid, &ws, 0, nil); err != nil || !ws.Stopped() {
		t.Fatalf("%s did not stop after exec: %v, status %v", bin, err, ws)
	}
	ms, err := procmaps.New().Read(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// smallBigTrace writes a charge trace of the smallbig workload as the tracer
// records it: its real mappings, and user stacks at small() and big()
// returning into main(): 100 anon charges from small, 300 from big, one page
// table page for each, a refused charge from big (which charged nothing),
// and a kernel thread's charge without a user stack.
func smallBigTrace(t *testing.T, bin string, ms []trace.Mapping, pathInTrace string, byBuildID, command bool) string {
	t.Helper()
	const pid = 4242
	small, _ := symAddr(t, bin, "small")
	big, _ := symAddr(t, bin, "big")
	mainAddr, mainSize := symAddr(t, bin, "main")
	for i := range ms {
		if ms[i].Path == bin {
			ms[i].Path = pathInTrace
		}
	}
	tf := filepath.Join(t.TempDir(), "smallbig.jsonl")
	f, err := os.Create(tf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := trace.Header{Kernel: "6.1.0-test", Batch: 64, PageSize: 4096, Backend: "fentry", Mode: "charges", Cgroup: "/sys/fs/cgroup/cgpeak-test", CgroupID: 77, CgroupVersion: 2}
	if command {
		id, err := symbolize.FileID(bin)
		if err != nil {
			t.Fatal(err)
		}
		h.Command, h.CommandPath, h.CommandBuildID = []string{bin}, bin, id
	}
	w, err := trace.NewWriter(f, h)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if !byBuildID {
		must(w.WriteProcess(trace.Process{PID: pid, Comm: "smallbig", Mappings: ms}))
	} else {
		// The process exited before its maps were read: the frames name
		// their files by build ID alone.
		must(w.WriteProcess(trace.Process{PID: pid, Comm: "smallbig", Error: "exited before its maps were read"}))
	}
	ret := mainAddr + mainSize/2 // a return address inside main
	frame := func(ip uint64) trace.UserFrame {
		if !byBuildID {
			return trace.UserFrame{IP: ip}
		}
		// As the kernel names it: the build ID zero-padded to 20 bytes,
		// the offset in the file.
		for _, m := range ms {
			if ip >= m.Start && ip < m.End {
				return trace.UserFrame{BuildID: (m.BuildID + strings.Repeat("0", 40))[:40], Offset: ip - m.Start + m.Offset}
			}
		}
		t.Fatalf("0x%x is in no mapping", ip)
		return trace.UserFrame{}
	}
	must(w.WriteUserStack(trace.UserStack{ID: 11, Frames: []trace.UserFrame{frame(small + 8), frame(ret)}}))
	must(w.WriteUserStack(trace.UserStack{ID: 12, Frames: []trace.UserFrame{frame(big + 8), frame(ret)}}))
	anon := []string{"try_charge_memcg", "__mem_cgroup_charge", "do_anonymous_page", "handle_mm_fault", "exc_page_fault", "asm_exc_page_fault"}
	pte := []string{"try_charge_memcg", "__memcg_kmem_charge_page", "pte_alloc_one", "__pte_alloc", "do_anonymous_page", "handle_mm_fault", "exc_page_fault", "asm_exc_page_fault"}
	must(w.WriteKernelStack(trace.KernelStack{ID: 21, Frames: anon}))
	must(w.WriteKernelStack(trace.KernelStack{ID: 22, Frames: pte}))
	must(w.WriteKernelStack(trace.KernelStack{ID: 23, Frames: []string{"try_charge_memcg", "kmem_cache_alloc", "worker_thread"}}))
	tm := uint64(1000)
	ev := func(ust, kst uint64, kind string, failed bool, p int, comm string) {
		tm++
		must(w.Write(trace.Event{Time: tm, PID: p, TID: p, Comm: comm, Op: analysis.OpCharge, Fn: "try_charge_memcg", Pages: 1, Kind: kind, UStack: ust, KStack: kst, Failed: failed}))
	}
	ev(11, 22, "page_tables", false, pid, "smallbig")
	for i := 0; i < 100; i++ {
		ev(11, 21, "anon", false, pid, "smallbig")
	}
	ev(12, 22, "page_tables", false, pid, "smallbig")
	for i := 0; i < 300; i++ {
		ev(12, 21, "anon", false, pid, "smallbig")
	}
	ev(12, 21, "anon", true, pid, "smallbig")
	ev(0, 23, "slab", false, 9, "kworker/0:1")
	must(w.Close(trace.End{UserStacks: &trace.StackCounts{Walked: 4, Reused: 400, NotUser: 1, Processes: 1}}))
	return tf
}

// buildSmallBig builds smallbig into dir as the Makefile's guest target
// does: the same source and flags give the same build ID anywhere.
func buildSmallBig(t *testing.T, dir string) string {
	t.Helper()
	needTool(t, "gcc")
	root, _ := filepath.Abs("../..")
	bin := filepath.Join(dir, "smallbig")
	cmd := exec.Command("gcc", "-O1", "-g", "-fno-omit-frame-pointer", "-ffile-prefix-map="+root+"=.", "-static", "-o", bin, "testdata/userstacks/smallbig.c")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	return bin
}

// profileOf explains a trace's charge requests by stack as explain's flags
// o ask, and returns the top functions and the trace's end line.
func profileOf(t *testing.T, tf string, o profileOpts) ([]topFunction, *trace.End) {
	t.Helper()
	f, err := os.Open(tf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ex, _, err := replay.Trace(f, tf, false)
	if err != nil {
		t.Fatal(err)
	}
	prof, err := chargeprof.ReadFile(tf)
	if err != nil {
		t.Fatal(err)
	}
	top, code := o.write(prof, ex)
	if code != 0 {
		t.Fatalf("writing the profile: exit %d", code)
	}
	return top, prof.End()
}

// From a trace of smallbig with its real mappings, the pprof profile, the
// folded stacks and --top attribute big:small = 3:1 exactly as the trace
// says, name the kernel path, leave the refused charge out, and go tool
// pprof opens the profile.
func TestExplainUserStacksSmallBig(t *testing.T) {
	// Frames as addresses named through the process's maps; frames named
	// by build ID (the process exited before its maps were read) whose
	// file is found among a directory's files, or is the traced command's.
	for _, v := range []struct {
		name               string
		byBuildID, command bool
	}{{"addresses", false, false}, {"build-ids", true, false}, {"build-ids-command", true, true}} {
		t.Run(v.name, func(t *testing.T) { testExplainSmallBig(t, v.byBuildID, v.command) })
	}
}

func testExplainSmallBig(t *testing.T, byBuildID, command bool) {
	dir := t.TempDir()
	bin := buildSmallBig(t, dir)
	tf := smallBigTrace(t, bin, liveMappings(t, bin), bin, byBuildID, command)
	var symbols []string
	if byBuildID && !command {
		symbols = []string{dir} // no path in the trace: found by build ID among the files there
	}
	pp, fo, fl := filepath.Join(dir, "p.pb.gz"), filepath.Join(dir, "f.folded"), filepath.Join(dir, "f.svg")
	top, _ := profileOf(t, tf, profileOpts{pprof: pp, folded: fo, flame: fl, top: 3, symbols: symbols})
	if svg, err := os.ReadFile(fl); err != nil || !bytes.Contains(svg, []byte("<title>big: 301 pages")) {
		t.Errorf("flame graph: %v, no box for big with its 301 pages", err)
	}

	p := parsePprof(t, pp)
	if len(p.SampleType) != 2 || p.SampleType[0].Type != "requests" || p.SampleType[1].Type != "charged" || p.SampleType[1].Unit != "bytes" {
		t.Fatalf("sample types %v", p.SampleType)
	}
	bytesBy := map[string]int64{} // innermost user function/kind
	for _, s := range p.Sample {
		user := ""
		for _, l := range s.Location {
			if l.Mapping != nil && l.Mapping.File != "[kernel.kallsyms]" || l.Mapping == nil {
				user = l.Line[0].Function.Name
				break
			}
		}
		if s.Location[0].Line[0].Function.Name != "try_charge_memcg" {
			t.Errorf("innermost location %s, want the kernel's try_charge_memcg", s.Location[0].Line[0].Function.Name)
		}
		last := s.Location[len(s.Location)-1].Line[0].Function.Name
		if user != "" && !strings.HasPrefix(user, "[") && last != "main" {
			t.Errorf("outermost location %s, want main", last)
		}
		bytesBy[user+"/"+s.Label["kind"][0]] += s.Value[1]
		if s.Label["cgroup"][0] != "/sys/fs/cgroup/cgpeak-test" {
			t.Errorf("cgroup label %v", s.Label["cgroup"])
		}
	}
	want := map[string]int64{"small/anon": 100 * 4096, "big/anon": 300 * 4096, "small/page_tables": 4096, "big/page_tables": 4096, "[no user stack]/slab": 4096}
	for k, v := range want {
		if bytesBy[k] != v {
			t.Errorf("%s: %d bytes, want %d (all: %v)", k, bytesBy[k], v, bytesBy)
		}
	}
	if bytesBy["big/anon"] != 3*bytesBy["small/anon"] {
		t.Errorf("big:small anon = %d:%d, want 3:1", bytesBy["big/anon"], bytesBy["small/anon"])
	}

	needTool(t, "go")
	out := runTool(t, "go", "tool", "pprof", "-top", "-sample_index=charged", pp)
	for _, fn := range []string{"big", "small", "try_charge_memcg"} {
		if !strings.Contains(out, " "+fn+"\n") {
			t.Errorf("go tool pprof -top does not name %s:\n%s", fn, out)
		}
	}
	runTool(t, "go", "tool", "pprof", "-raw", pp)

	b, err := os.ReadFile(fo)
	if err != nil {
		t.Fatal(err)
	}
	kernel := "asm_exc_page_fault_[k];exc_page_fault_[k];handle_mm_fault_[k];do_anonymous_page_[k];__mem_cgroup_charge_[k];try_charge_memcg_[k]"
	for _, l := range []string{"smallbig;main;big;" + kernel + " 300", "smallbig;main;small;" + kernel + " 100", "kworker/0:1;[no user stack];worker_thread_[k];kmem_cache_alloc_[k];try_charge_memcg_[k] 1"} {
		if !bytes.Contains(b, []byte(l+"\n")) {
			t.Errorf("folded stacks lack %q:\n%s", l, b)
		}
	}

	if len(top) < 2 || top[0].Function != "big" || top[0].SelfPages != 301 || top[0].Kinds["anon"] != 300 || top[1].Function != "small" || top[1].SelfPages != 101 {
		t.Errorf("top %+v, want big 301 (300 anon) then small 101", top)
	}
	var buf bytes.Buffer
	writeTop(&buf, top, 4096)
	if !strings.Contains(buf.String(), "big smallbig.c (anon 300, page tables 1)") {
		t.Errorf("--top output:\n%s", buf.String())
	}
}

// A trace whose binary is elsewhere on this machine: found with --symbols by
// name; a stripped copy gives module+offset and the build ID, never a name.
func TestExplainUserStacksElsewhereAndStripped(t *testing.T) {
	dir := t.TempDir()
	bin := buildSmallBig(t, dir)
	ms := liveMappings(t, bin)
	tf := smallBigTrace(t, bin, ms, "/usr/local/bin/smallbig", false, false)
	fo := filepath.Join(dir, "f.folded")
	top, _ := profileOf(t, tf, profileOpts{folded: fo, top: 2, symbols: []string{dir}})
	if top[0].Function != "big" || top[1].Function != "small" {
		t.Errorf("with --symbols %s: top %+v", dir, top)
	}

	sdir := t.TempDir()
	runTool(t, "strip", "-o", filepath.Join(sdir, "smallbig"), bin)
	top, _ = profileOf(t, tf, profileOpts{folded: fo, top: 2, symbols: []string{sdir}})
	big, _ := symAddr(t, bin, "big")
	var off uint64
	for _, m := range ms {
		if big+8 >= m.Start && big+8 < m.End {
			off = big + 8 - m.Start + m.Offset
		}
	}
	if want := "smallbig+0x" + strconv.FormatUint(off, 16); top[0].Function != want || top[0].SelfPages != 301 {
		t.Errorf("stripped: top %+v, want %s with 301 pages", top, want)
	}
}

// Summary traces have no charge requests to attribute: a one-line error.
func TestExplainPprofNeedsCharges(t *testing.T) {
	const tf = "../../testdata/traces/bookworm-seed-stocks-touch196.jsonl"
	f, err := os.Open(tf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ex, _, err := replay.Trace(f, "stocks", false)
	if err != nil {
		t.Fatal(err)
	}
	prof, err := chargeprof.ReadFile(tf)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "p.pb.gz")
	if _, code := (&profileOpts{pprof: out}).write(prof, ex); code != exitNoStacks {
		t.Errorf("a stock-read summary trace: exit %d, want %d (no stacks)", code, exitNoStacks)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed --pprof left a file behind")
	}
}

// A trace recorded in the VM (Debian's 6.1, fentry) of smallbig as the guest
// runs it, explained here from the file alone and a copy of the binary:
// built again with the Makefile's flags, it has the recorded build ID. The
// workload touched 300 pages in big() and 100 in small(): the trace says so
// by their names; a stripped copy gives the file offsets inside them; no
// request from inside execve carries a user stack.
func TestRecordedSmallBigTrace(t *testing.T) {
	const tf = "../../testdata/userstacks/bookworm-smallbig-charges.jsonl"
	dir := t.TempDir()
	bin := buildSmallBig(t, dir)
	raw, err := os.ReadFile(tf)
	if err != nil {
		t.Fatal(err)
	}
	id, err := symbolize.FileID(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(`"build_id":"`+id+`"`)) {
		t.Skipf("this gcc builds smallbig with build ID %s, not the recorded one: its symbols cannot name the recorded trace (the recorder was right to refuse)", id)
	}
	pp := filepath.Join(dir, "p.pb.gz")
	top, _ := profileOf(t, tf, profileOpts{pprof: pp, top: 10, symbols: []string{dir}})
	big, small := findTop(top, "big"), findTop(top, "small")
	if big.Kinds["anon"] != 300 || small.Kinds["anon"] != 100 {
		t.Errorf("anon pages big %d, small %d; want 300 and 100 (top %+v)", big.Kinds["anon"], small.Kinds["anon"], top)
	}
	if r := float64(big.SelfPages) / float64(small.SelfPages); r < 2.85 || r > 3.15 {
		t.Errorf("big:small = %d:%d", big.SelfPages, small.SelfPages)
	}
	needTool(t, "go")
	out := runTool(t, "go", "tool", "pprof", "-top", "-sample_index=charged", pp)
	for _, fn := range []string{" big\n", " small\n", " main\n"} {
		if !strings.Contains(out, fn) {
			t.Errorf("go tool pprof -top lacks%q:\n%s", fn, out)
		}
	}

	sdir := t.TempDir()
	runTool(t, "strip", "-o", filepath.Join(sdir, "smallbig"), bin)
	top, _ = profileOf(t, tf, profileOpts{top: 2, symbols: []string{sdir}})
	bigAddr, bigSize := symAddr(t, bin, "big")
	lo := fileOffset(t, bin, bigAddr)
	var off uint64
	if _, err := fmt.Sscanf(top[0].Function, "smallbig+0x%x", &off); err != nil || off < lo || off >= lo+bigSize || top[0].SelfPages != big.SelfPages {
		t.Errorf("stripped copy: top %+v, want smallbig+0x... within big (file offsets 0x%x-0x%x) with %d pages", top[0], lo, lo+bigSize, big.SelfPages)
	}

	noUserStackInExec(t, raw)
}

func parsePprof(t *testing.T, path string) *profile.Profile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		t.Fatalf("%s does not parse as a pprof profile: %v", path, err)
	}
	return p
}

// noUserStackInExec: no request from inside execve has a user stack (its
// registers are the old program's, its mappings maybe the new one's).
func noUserStackInExec(t *testing.T, raw []byte) {
	t.Helper()
	r, err := trace.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	for {
		e, err := r.Next()
		if err != nil {
			break
		}
		if e.UStack == 0 {
			continue
		}
		for _, f := range r.KStacks[e.KStack].Frames {
			if strings.Contains(f, "execve") || f == "load_elf_binary" {
				t.Errorf("a request inside execve (%s) has user stack %d", f, e.UStack)
			}
		}
	}
}

// fileOffset is where vaddr lies in the file, by the program headers.
func fileOffset(t *testing.T, bin string, vaddr uint64) uint64 {
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && vaddr >= p.Vaddr && vaddr < p.Vaddr+p.Filesz {
			return vaddr - p.Vaddr + p.Off
		}
	}
	t.Fatalf("0x%x not in %s's segments", vaddr, bin)
	return 0
}
