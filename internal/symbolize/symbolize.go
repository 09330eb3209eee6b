// Package symbolize names the addresses of user stacks recorded in a trace:
// ELF symbol tables, file:line from DWARF, Go's pclntab, demangled C++ and
// Rust names. Binaries are found by path (or in extra directories) and used
// only when their build ID is the traced one: a rebuilt binary would give
// wrong names, so its frames are named by module and file offset instead.
package symbolize

import (
	"debug/dwarf"
	"debug/elf"
	"debug/gosym"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ianlancetaylor/demangle"

	"github.com/cgpeak/cgpeak/trace"
)

// Frame is one named address.
type Frame struct {
	Func    string // function, "" when no symbol covers the address
	File    string // source file, "" without line information
	Line    int
	Module  string // the mapped file's path
	Offset  uint64 // the address's offset in that file
	BuildID string
}

// Name is the function, else module+offset (the file offset, which
// together with the build ID names the spot in any copy of the binary).
func (f Frame) Name() string {
	if f.Func != "" {
		return f.Func
	}
	if f.Module == "" {
		return fmt.Sprintf("0x%x", f.Offset)
	}
	return fmt.Sprintf("%s+0x%x", filepath.Base(f.Module), f.Offset)
}

// Symbolizer resolves addresses, caching each binary by build ID.
type Symbolizer struct {
	dirs     []string
	bins     map[string]*binary // by build ID; nil: not found or not usable
	ids      map[string]idResult
	names    map[string]string // build ID -> a short name for a file not found
	warnings []string
}

// New looks binaries up at their traced path, then in dirs (by base name and
// in .build-id/xx/rest.debug trees, as debug packages install them).
func New(dirs ...string) *Symbolizer {
	return &Symbolizer{dirs: dirs, bins: map[string]*binary{}, ids: map[string]idResult{}, names: map[string]string{}}
}

// Warnings says, once per binary, which could not be used and why.
func (s *Symbolizer) Warnings() []string { return s.warnings }

// Resolve names addr, an address in mapping m. caller is true for return
// addresses (every frame but the innermost), which point past the call.
func (s *Symbolizer) Resolve(m trace.Mapping, addr uint64, caller bool) Frame {
	return s.resolve(m.Path, m.BuildID, orDefault(m.Error, "not recorded"), addr-m.Start+m.Offset, caller)
}

// ResolveFile names the spot at file offset off in the file whose build ID
// is id, found at path ("" when unknown) or in the directories.
func (s *Symbolizer) ResolveFile(path, id string, off uint64, caller bool) Frame {
	return s.resolve(path, id, "", off, caller)
}

func (s *Symbolizer) resolve(path, id, why string, off uint64, caller bool) Frame {
	fr := Frame{Module: path, Offset: off, BuildID: id}
	b := s.binary(path, id, why)
	if b == nil {
		if fr.Module == "" && b == nil {
			fr.Module = s.names[normID(id)]
		}
		return fr
	}
	if fr.Module == "" {
		fr.Module = b.path
	}
	va, ok := b.vaddr(off)
	if !ok {
		return fr
	}
	if caller {
		va--
	}
	fr.Func, fr.File, fr.Line = b.lookup(va)
	return fr
}

// SameBuildID: a and b name the same contents. The kernel reads build IDs
// into 20 zero-padded bytes, so trailing zeros do not count.
func SameBuildID(a, b string) bool {
	return a == b || !strings.Contains(a, ":") && !strings.Contains(b, ":") && normID(a) == normID(b)
}

func normID(id string) string {
	if strings.Contains(id, ":") {
		return id
	}
	return strings.TrimRight(id, "0")
}

func (s *Symbolizer) binary(path, id, why string) *binary {
	key := normID(id)
	if id == "" {
		key = "path:" + path // no build ID was recorded: nothing to check against
	}
	if b, ok := s.bins[key]; ok {
		return b
	}
	s.bins[key] = nil
	if id == "" {
		s.warn("%s: the trace has no build ID for it (%s): its frames are named by file offset", path, why)
		return nil
	}
	var mismatched []string
	for _, p := range s.candidates(path, id) {
		fid, err := s.fileID(p)
		if err != nil {
			continue
		}
		if !SameBuildID(fid, id) {
			if path != "" && filepath.Base(p) == filepath.Base(path) {
				mismatched = append(mismatched, p)
			}
			continue
		}
		b, err := load(p)
		if err != nil {
			s.warn("%s: %v: its frames are named by file offset", p, err)
			return nil
		}
		b.path = p
		s.bins[key] = b
		return b
	}
	name := path
	if name == "" {
		name = "the file"
		s.names[key] = "buildid:" + id[:min(len(id), 12)]
	}
	switch {
	case strings.HasPrefix(path, "/memfd:"):
		// An anonymous file (cgpeak's own launcher is one): nowhere to
		// look, and nothing to say about it.
	case len(mismatched) > 0:
		s.warn("%s: build ID differs from the traced %s (rebuilt since?): its frames are named by file offset", strings.Join(mismatched, ", "), id)
	default:
		s.warn("%s with build ID %s: not found: its frames are named by file offset", name, id)
	}
	return nil
}

// candidates are where the file may be: its traced path, then each
// directory's build-ID tree, the file of the same name there, and (for a
// file whose path is unknown) every file there.
func (s *Symbolizer) candidates(path, id string) []string {
	var out []string
	if path != "" {
		out = append(out, path)
	}
	nid := normID(id)
	for _, d := range s.dirs {
		if len(id) > 2 && !strings.Contains(id, ":") {
			out = append(out, filepath.Join(d, ".build-id", id[:2], id[2:]+".debug"), filepath.Join(d, ".build-id", id[:2], id[2:]))
			if nid != id && len(nid) > 2 {
				out = append(out, filepath.Join(d, ".build-id", nid[:2], nid[2:]+".debug"), filepath.Join(d, ".build-id", nid[:2], nid[2:]))
			}
		}
		if path != "" {
			out = append(out, filepath.Join(d, filepath.Base(path)))
			continue
		}
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if e.Type().IsRegular() {
				out = append(out, filepath.Join(d, e.Name()))
			}
		}
	}
	return out
}

// fileID caches FileID by path for the directory scans.
func (s *Symbolizer) fileID(p string) (string, error) {
	if r, ok := s.ids[p]; ok {
		return r.id, r.err
	}
	id, err := FileID(p)
	s.ids[p] = idResult{id, err}
	return id, err
}

type idResult struct {
	id  string
	err error
}

func (s *Symbolizer) warn(format string, args ...any) {
	s.warnings = append(s.warnings, fmt.Sprintf(format, args...))
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

type symbol struct {
	addr, size uint64
	name       string
}

type line struct {
	file string
	line int
}

// binary is what one ELF file can tell about its addresses.
type binary struct {
	path  string
	loads []elf.ProgHeader
	syms  []symbol // functions with a size, by address
	dw    *dwarf.Data
	gotab *gosym.Table
	lines map[uint64]line
}

func load(path string) (*binary, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := &binary{lines: map[uint64]line{}}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			b.loads = append(b.loads, p.ProgHeader)
		}
	}
	syms, err := f.Symbols()
	if err != nil || len(syms) == 0 {
		syms, _ = f.DynamicSymbols()
	}
	for _, sy := range syms {
		// A symbol without a size might cover anything up to the next
		// one: guessing there could give a wrong name, so it is left out.
		if elf.ST_TYPE(sy.Info) == elf.STT_FUNC && sy.Size > 0 && sy.Value != 0 {
			b.syms = append(b.syms, symbol{sy.Value, sy.Size, sy.Name})
		}
	}
	sort.Slice(b.syms, func(i, j int) bool { return b.syms[i].addr < b.syms[j].addr })
	if sec := f.Section(".gopclntab"); sec != nil {
		data, err := sec.Data()
		text := f.Section(".text")
		if err == nil && text != nil {
			if t, err := gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr)); err == nil {
				b.gotab = t
			}
		}
	}
	if dw, err := f.DWARF(); err == nil {
		b.dw = dw
	}
	return b, nil
}

// vaddr turns a file offset into the address the binary's own symbols use.
func (b *binary) vaddr(off uint64) (uint64, bool) {
	for _, p := range b.loads {
		if off >= p.Off && off < p.Off+p.Filesz {
			return off - p.Off + p.Vaddr, true
		}
	}
	return 0, false
}

func (b *binary) lookup(pc uint64) (fn, file string, ln int) {
	if b.gotab != nil {
		if f := b.gotab.PCToFunc(pc); f != nil {
			file, ln, _ = b.gotab.PCToLine(pc)
			return f.Name, file, ln
		}
	}
	i := sort.Search(len(b.syms), func(i int) bool { return b.syms[i].addr > pc }) - 1
	if i < 0 || pc >= b.syms[i].addr+b.syms[i].size {
		return "", "", 0
	}
	fn = demangle.Filter(b.syms[i].name, demangle.NoClones)
	l := b.line(pc)
	return fn, l.file, l.line
}

func (b *binary) line(pc uint64) line {
	if l, ok := b.lines[pc]; ok || b.dw == nil {
		return l
	}
	var l line
	r := b.dw.Reader()
	if cu, err := r.SeekPC(pc); err == nil {
		if lr, err := b.dw.LineReader(cu); err == nil && lr != nil {
			var e dwarf.LineEntry
			if lr.SeekPC(pc, &e) == nil && e.File != nil {
				name := e.File.Name
				if dir, ok := cu.Val(dwarf.AttrCompDir).(string); ok && !filepath.IsAbs(name) {
					name = filepath.Join(dir, name)
				}
				l = line{name, e.Line}
			}
		}
	}
	b.lines[pc] = l
	return l
}
