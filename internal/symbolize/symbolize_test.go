package symbolize

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cgpeak/cgpeak/trace"
)

// The ground truth of these tests is binutils (nm, addr2line, readelf) on
// binaries built here, not this package's own reading of them.

func tool(t *testing.T, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed: cannot build or inspect the test binaries", name)
	}
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// nmAddr is a function's address by nm.
func nmAddr(t *testing.T, bin, fn string) uint64 {
	t.Helper()
	for _, l := range strings.Split(tool(t, "nm", bin), "\n") {
		f := strings.Fields(l)
		if len(f) == 3 && f[2] == fn {
			a, err := strconv.ParseUint(f[0], 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return a
		}
	}
	t.Fatalf("nm: no %s in %s", fn, bin)
	return 0
}

// mapAt maps the binary's executable segment the way the kernel does
// (page-aligned start and offset), at base plus its own address, and
// returns the mapping and the runtime address of vaddr.
func mapAt(t *testing.T, bin string, base, vaddr uint64) (trace.Mapping, uint64) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	id, err := FileID(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 && vaddr >= p.Vaddr && vaddr < p.Vaddr+p.Filesz {
			start := base + p.Vaddr&^0xfff
			return trace.Mapping{Start: start, End: base + p.Vaddr + p.Memsz, Offset: p.Off &^ 0xfff, Path: bin, BuildID: id}, base + vaddr
		}
	}
	t.Fatalf("%s: no executable segment holds 0x%x", bin, vaddr)
	return trace.Mapping{}, 0
}

func readelfBuildID(t *testing.T, bin string) string {
	for _, l := range strings.Split(tool(t, "readelf", "-n", bin), "\n") {
		if _, id, ok := strings.Cut(l, "Build ID: "); ok {
			return strings.TrimSpace(id)
		}
	}
	t.Fatalf("readelf: %s has no build ID", bin)
	return ""
}

func buildSmallBig(t *testing.T, dir, name string, extra ...string) string {
	bin := filepath.Join(dir, name)
	args := append([]string{"-O1", "-g", "-fno-omit-frame-pointer", "-o", bin, "../../testdata/userstacks/smallbig.c"}, extra...)
	tool(t, "gcc", args...)
	return bin
}

func TestCStatic(t *testing.T) {
	bin := buildSmallBig(t, t.TempDir(), "smallbig", "-static")
	s := New()
	for _, fn := range []string{"small", "big"} {
		a := nmAddr(t, bin, fn) + 8
		m, addr := mapAt(t, bin, 0, a)
		got := s.Resolve(m, addr, false)
		want := strings.Fields(tool(t, "addr2line", "-e", bin, strconv.FormatUint(a, 16)))[0]
		wantFile, wantLine, _ := strings.Cut(want, ":")
		if got.Func != fn || got.File != filepath.Clean(wantFile) || strconv.Itoa(got.Line) != wantLine {
			t.Errorf("0x%x: got %s %s:%d, want %s %s (addr2line)", a, got.Func, got.File, got.Line, fn, want)
		}
		if got.BuildID != readelfBuildID(t, bin) {
			t.Errorf("build ID %s, readelf says %s", got.BuildID, readelfBuildID(t, bin))
		}
	}
	if w := s.Warnings(); len(w) > 0 {
		t.Errorf("warnings: %q", w)
	}
}

// A return address points past its call: the frame is the caller's even
// when the call is the function's last instruction.
func TestCallerAddressIsTheCall(t *testing.T) {
	bin := buildSmallBig(t, t.TempDir(), "smallbig", "-static")
	next := nmAddr(t, bin, "big")
	m, addr := mapAt(t, bin, 0, next)
	s := New()
	if got := s.Resolve(m, addr, false); got.Func != "big" {
		t.Errorf("innermost frame at big's first byte: %q, want big", got.Func)
	}
	// One past the end of the function laid out before big, if it ends
	// where big starts.
	if got := s.Resolve(m, addr, true); got.Func == "big" {
		t.Errorf("return address at big's first byte named big: a call's return address belongs to the caller")
	}
}

// A position-independent executable mapped at a random base: the symbol is
// found through the mapping's file offset and the segment's address.
func TestPIE(t *testing.T) {
	bin := buildSmallBig(t, t.TempDir(), "smallbig-pie", "-pie", "-fPIE")
	a := nmAddr(t, bin, "big") + 4
	m, addr := mapAt(t, bin, 0x55d1c2a00000, a)
	if got := New().Resolve(m, addr, false); got.Func != "big" || !strings.HasSuffix(got.File, "smallbig.c") {
		t.Errorf("PIE at 0x55d1c2a00000: %+v, want big in smallbig.c", got)
	}
}

// A stripped copy has the same build ID and no symbols: its frames are the
// module and the file offset, never another function's name.
func TestStripped(t *testing.T) {
	dir := t.TempDir()
	bin := buildSmallBig(t, dir, "smallbig", "-static")
	stripped := filepath.Join(dir, "smallbig-stripped")
	tool(t, "strip", "-o", stripped, bin)
	if readelfBuildID(t, stripped) != readelfBuildID(t, bin) {
		t.Fatal("strip changed the build ID")
	}
	a := nmAddr(t, bin, "big") + 4
	m, addr := mapAt(t, stripped, 0, a)
	got := New().Resolve(m, addr, false)
	wantOff := addr - m.Start + m.Offset
	if got.Func != "" || got.BuildID != readelfBuildID(t, bin) || got.Offset != wantOff {
		t.Fatalf("stripped: %+v, want no name, build ID %s, offset 0x%x", got, readelfBuildID(t, bin), wantOff)
	}
	if want := "smallbig-stripped+0x" + strconv.FormatUint(wantOff, 16); got.Name() != want {
		t.Errorf("name %q, want %q", got.Name(), want)
	}
	// The unstripped binary, found in a directory by build ID, names it.
	debugDir := t.TempDir()
	id := readelfBuildID(t, bin)
	if err := os.MkdirAll(filepath.Join(debugDir, ".build-id", id[:2]), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(bin, filepath.Join(debugDir, ".build-id", id[:2], id[2:]+".debug")); err != nil {
		t.Fatal(err)
	}
	m.Path = "/nonexistent/smallbig"
	if got := New(debugDir).Resolve(m, addr, false); got.Func != "big" {
		t.Errorf("with the debug copy in %s: %+v, want big", debugDir, got)
	}
}

// A binary rebuilt at the traced path after the trace: its build ID differs,
// so its symbols are not used, and the warning says why.
func TestRebuiltBinaryGivesNoName(t *testing.T) {
	dir := t.TempDir()
	bin := buildSmallBig(t, dir, "smallbig", "-static")
	a := nmAddr(t, bin, "big") + 4
	m, addr := mapAt(t, bin, 0, a)
	buildSmallBig(t, dir, "smallbig", "-static", "-DREBUILT=1", "-O2")
	s := New()
	got := s.Resolve(m, addr, false)
	if got.Func != "" {
		t.Errorf("rebuilt binary named 0x%x %q", addr, got.Func)
	}
	if w := s.Warnings(); len(w) != 1 || !strings.Contains(w[0], "build ID differs") {
		t.Errorf("warnings %q, want one saying the build ID differs", w)
	}
}

func TestGo(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "goalloc")
	tool(t, "go", "build", "-o", bin, "../../testdata/userstacks/goalloc")
	stripped := filepath.Join(dir, "goalloc-s")
	tool(t, "go", "build", "-ldflags=-s -w", "-o", stripped, "../../testdata/userstacks/goalloc")
	for _, fn := range []string{"main.allocSmall", "main.allocBig"} {
		a := nmAddr(t, bin, fn) + 8
		m, addr := mapAt(t, bin, 0, a)
		got := New().Resolve(m, addr, false)
		if got.Func != fn || !strings.HasSuffix(got.File, "goalloc/main.go") || got.Line == 0 {
			t.Errorf("%s: %+v", fn, got)
		}
		// Without a symbol table, Go's pclntab (runtime data) still names it.
		a2 := a - nmAddr(t, bin, "main.main") + goMainAddr(t, stripped)
		m2, addr2 := mapAt(t, stripped, 0, a2)
		if got := New().Resolve(m2, addr2, false); got.Func != fn {
			t.Errorf("%s in a binary built with -s -w: %+v", fn, got)
		}
	}
}

// goMainAddr is main.main's address in a Go binary without a symbol table,
// from the same binary's pclntab through go tool addr2line's inverse: the
// binaries differ only by their symbol tables, so their text is laid out
// alike; check that by the text section's address.
func goMainAddr(t *testing.T, bin string) uint64 {
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	full := strings.TrimSuffix(bin, "-s")
	g, err := elf.Open(full)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if f.Section(".text").Addr != g.Section(".text").Addr || f.Section(".text").Size != g.Section(".text").Size {
		t.Skip("the stripped Go build laid its text out differently: cannot map the address")
	}
	return nmAddr(t, full, "main.main")
}

func TestCPlusPlusDemangled(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "a.cc")
	if err := os.WriteFile(src, []byte("namespace ns { __attribute__((noinline)) int f(int x) { return x * 2; } }\nint main() { return ns::f(1); }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "a")
	tool(t, "g++", "-O1", "-static", "-o", bin, src)
	a := nmAddr(t, bin, "_ZN2ns1fEi")
	m, addr := mapAt(t, bin, 0, a)
	if got := New().Resolve(m, addr, false); got.Func != "ns::f(int)" {
		t.Errorf("C++ function: %q, want ns::f(int)", got.Func)
	}
}

func TestFileIDWithoutBuildID(t *testing.T) {
	dir := t.TempDir()
	bin := buildSmallBig(t, dir, "nobuildid", "-static", "-Wl,--build-id=none")
	id, err := FileID(bin)
	if err != nil || !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("FileID = %q, %v; want a sha256 of the file", id, err)
	}
	want := strings.Fields(tool(t, "sha256sum", bin))[0]
	if id != "sha256:"+want {
		t.Errorf("FileID = %s, sha256sum says %s", id, want)
	}
}
