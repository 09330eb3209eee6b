// Package trace is the saved form of a charge trace (docs/trace-format.md):
// a header, the events with the tables they refer to, and an end, written
// in a compact binary form or as JSON Lines, one record a line. It is read
// back as a stream, either form, so a trace of any length explains in
// bounded memory.
package trace

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/cgpeak/cgpeak/analysis"
)

// Schema is the version of the format; readers refuse newer ones. Schema 2
// added the process, ustack and kstack lines (which a schema-1 reader would
// refuse) and the events' ustack and kstack fields.
const Schema = 2

// Header is the first line.
type Header struct {
	Type          string   `json:"type"` // "header"
	Schema        int      `json:"schema"`
	Kernel        string   `json:"kernel"`
	Batch         uint64   `json:"batch_pages"`
	BatchSource   string   `json:"batch_source"`
	CPUs          int      `json:"cpus"`
	PageSize      uint64   `json:"page_size"`
	Backend       string   `json:"backend"`
	Mode          string   `json:"mode"`                  // "summary" or "charges" (every charge)
	Descendants   bool     `json:"descendants,omitempty"` // the cgroups below the traced one are traced too
	Cgroup        string   `json:"cgroup"`
	CgroupID      uint64   `json:"cgroup_id"`
	CgroupVersion int      `json:"cgroup_version"`
	Command       []string `json:"command,omitempty"`
	// The command's executable as cgpeak found it, and its build ID: its
	// user frames can be named even when it exited before its maps were read.
	CommandPath    string `json:"command_path,omitempty"`
	CommandBuildID string `json:"command_build_id,omitempty"`
	Attached       bool   `json:"attached,omitempty"` // tracing began on a running cgroup
	// StocksRead: a summary trace whose events carry the per-CPU stocks as
	// the kernel held them (stocked, real); no charge request is recorded.
	StocksRead bool              `json:"stocks_read,omitempty"`
	Functions  map[string]string `json:"functions"` // traced function -> kernel symbol, or "missing: why"
	// CannotSee: what the backend cannot observe, so no figure of the trace
	// claims it (the tracepoint backend: charge requests, the stocks' split).
	CannotSee []string `json:"cannot_see,omitempty"`
	Started   string   `json:"started"` // RFC 3339
	// Filled in when tracing ends, where the trace is a file cgpeak can
	// rewrite: a trace with losses says so from its first line.
	Lost        uint64 `json:"lost,omitempty"`         // events lost (ring buffer full)
	MissedCalls uint64 `json:"missed_calls,omitempty"` // calls the kernel's probes skipped
}

// Event is one traced call: the model's event, which is also the line's
// schema.
type Event = analysis.Event

// Process is a "process" line: a traced process's executable mappings, read
// from /proc when it first charged, so its user stacks can be symbolized
// after it exited and on another machine. A later line for the same pid (it
// exec'd) replaces the earlier one for the events after it.
type Process struct {
	Type     string    `json:"type"` // "process"
	PID      int       `json:"pid"`
	Comm     string    `json:"comm,omitempty"`
	Mappings []Mapping `json:"mappings,omitempty"`
	Error    string    `json:"error,omitempty"` // why there are no mappings (e.g. the process had exited)
}

// Mapping is one executable file mapping of a process (/proc/PID/maps).
type Mapping struct {
	Start   uint64 `json:"start"`  // first address
	End     uint64 `json:"end"`    // first address past it
	Offset  uint64 `json:"offset"` // file offset mapped at start
	Path    string `json:"path"`
	BuildID string `json:"build_id,omitempty"` // hex NT_GNU_BUILD_ID; "go:..." (Go build ID) or "sha256:..." without one
	Error   string `json:"error,omitempty"`    // why the file could not be read for its build ID
}

// Find returns the mapping holding addr.
func (p *Process) Find(addr uint64) (Mapping, bool) {
	for _, m := range p.Mappings {
		if addr >= m.Start && addr < m.End {
			return m, true
		}
	}
	return Mapping{}, false
}

// UserStack is a "ustack" line: a user stack as the kernel walked it
// (frame pointers), innermost first.
type UserStack struct {
	Type      string      `json:"type"` // "ustack"
	ID        uint64      `json:"id"`
	Frames    []UserFrame `json:"frames"`
	Truncated bool        `json:"truncated,omitempty"` // the walk filled its buffer: the stack may be deeper
}

// UserFrame is where one frame was: the build ID of the file mapped there
// and the offset in that file, as the kernel named it at the request, or
// else (no build ID, or the kernel could not look) its address.
type UserFrame struct {
	BuildID string `json:"build_id,omitempty"` // hex, as the kernel read it (20 bytes, zero-padded)
	Offset  uint64 `json:"offset,omitempty"`   // with build_id: the file offset
	IP      uint64 `json:"ip,omitempty"`       // without: the address in the process
}

// KernelStack is a "kstack" line: a kernel stack's functions, innermost
// first, named from the traced machine's kallsyms (kernel addresses mean
// nothing elsewhere).
type KernelStack struct {
	Type   string   `json:"type"` // "kstack"
	ID     uint64   `json:"id"`
	Frames []string `json:"frames"`
}

// StackCounts says how the user stacks of charge requests were taken: every
// request is in exactly one of walked, reused, failed or not_user.
type StackCounts struct {
	Walked    uint64 `json:"walked"`               // walked by the kernel for this request
	Reused    uint64 `json:"reused"`               // given the stack last walked on the same call path
	Failed    uint64 `json:"failed"`               // the walk returned nothing (no frame pointers, a fault)
	NotUser   uint64 `json:"not_user,omitempty"`   // kernel threads: no user stack
	Truncated uint64 `json:"truncated"`            // of walked: deeper than the walk went
	Processes uint64 `json:"processes"`            // processes whose mappings were read
	Exited    uint64 `json:"exited"`               // processes gone before their mappings were read
	NoMaps    uint64 `json:"unreadable,omitempty"` // processes whose mappings could not be read otherwise
	Execd     uint64 `json:"execd,omitempty"`      // processes that exec'd before their mappings were read
	Unstored  uint64 `json:"unstored,omitempty"`   // requests whose stack was walked but not stored (the table was full)
	InExec    uint64 `json:"in_exec,omitempty"`    // requests from inside execve, whose user stack is left out
}

// End is the last line.
type End struct {
	Type            string            `json:"type"` // "end"
	Events          uint64            `json:"events"`
	Lost            uint64            `json:"lost"`
	Missed          map[string]uint64 `json:"missed,omitempty"`
	Summary         *analysis.Summary `json:"summary,omitempty"` // summary traces: what the kernel side kept
	Cgroups         map[string]string `json:"cgroups,omitempty"` // descendants: cgroup id -> directory
	PeakBytes       *uint64           `json:"cgroup_peak_bytes,omitempty"`
	PeakSource      string            `json:"cgroup_peak_source,omitempty"`
	PeakUnavailable string            `json:"cgroup_peak_unavailable,omitempty"`
	UserStacks      *StackCounts      `json:"user_stacks,omitempty"` // traces with user stacks
	// Reconciliation: tracepoint traces whose probes the kernel skipped:
	// the cgroup's statistics and the programs' running sum of them, read
	// together at the end once both were still.
	Reconciliation *Reconciliation `json:"reconciliation,omitempty"`
}

// Reconciliation is the charged statistics the kernel counted (memory.stat,
// flushed) and the tracepoint programs' running sum of them, in pages, read
// at one moment when the sum had not moved for longer than the kernel's
// periodic statistics flush (every 2 s), so memory.stat was flushed after
// the last update: their difference is the net of the traced cgroup's own
// skipped updates.
type Reconciliation struct {
	StatPages    int64   `json:"memory_stat_pages"`
	SumPages     int64   `json:"traced_sum_pages"`
	QuietSeconds float64 `json:"quiet_seconds"` // how long the sum had been still
}

// Format is how a trace file is encoded.
type Format string

const (
	// Binary: the compact form (docs/trace-format.md, "Binary form"), what
	// cgpeak records by default: it keeps up with millions of events a
	// second, where JSON Lines cannot.
	Binary Format = "binary"
	// JSONL: JSON Lines, the text form, for people who grep.
	JSONL Format = "jsonl"
)

// ParseFormat reads a format's name, as --trace-format takes it.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case Binary, JSONL:
		return f, nil
	}
	return "", fmt.Errorf("unknown trace format %q: use %s or %s", s, Binary, JSONL)
}

// Writer writes a trace.
type Writer struct {
	w      *bufio.Writer
	enc    *json.Encoder // JSON Lines
	bin    *binWriter    // binary
	n      uint64
	at     io.WriterAt // the file, when its header can be rewritten at the end
	header Header
	room   int // JSON Lines: bytes the header line has before its newline
}

// headerRoom is the padding after the header, so the losses found at the
// end fit in when the header is rewritten (JSON allows trailing blanks).
const headerRoom = 128

// NewWriter writes the header of a binary trace.
func NewWriter(w io.Writer, h Header) (*Writer, error) { return NewFormatWriter(w, h, Binary) }

// NewJSONLWriter writes the header of a JSON Lines trace.
func NewJSONLWriter(w io.Writer, h Header) (*Writer, error) { return NewFormatWriter(w, h, JSONL) }

// NewFormatWriter writes the header of a trace in format f.
func NewFormatWriter(w io.Writer, h Header, f Format) (*Writer, error) {
	h.Type, h.Schema = "header", Schema
	bw := bufio.NewWriterSize(w, 1<<16)
	tw := &Writer{w: bw, header: h}
	if f, ok := w.(interface {
		io.WriterAt
		io.Seeker
	}); ok {
		if off, err := f.Seek(0, io.SeekCurrent); err == nil && off == 0 {
			tw.at = f
		}
	}
	switch f {
	case Binary:
		tw.bin = newBinWriter()
		return tw, tw.writeBinaryHeader(tw.at != nil)
	case JSONL:
	default:
		return nil, fmt.Errorf("unknown trace format %q", f)
	}
	tw.enc = json.NewEncoder(bw)
	b, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	if tw.at != nil {
		b = append(b, bytes.Repeat([]byte(" "), headerRoom)...)
	}
	tw.room = len(b)
	_, err = bw.Write(append(b, '\n'))
	return tw, err
}

// Format says how the trace is written.
func (w *Writer) Format() Format {
	if w.bin != nil {
		return Binary
	}
	return JSONL
}

// Write adds an event.
func (w *Writer) Write(e Event) error {
	w.n++
	if w.bin != nil {
		return w.writeBinaryEvent(&e)
	}
	return w.enc.Encode(e)
}

// WriteProcess adds a process line; it must come before the process's
// first event that has a user stack.
func (w *Writer) WriteProcess(p Process) error {
	p.Type = "process"
	if w.bin != nil {
		return w.writeJSONRecord(recProcess, p)
	}
	return w.enc.Encode(p)
}

// WriteUserStack adds a ustack line, before the first event naming it.
func (w *Writer) WriteUserStack(s UserStack) error {
	s.Type = "ustack"
	if w.bin != nil {
		return w.writeJSONRecord(recUStack, s)
	}
	return w.enc.Encode(s)
}

// WriteKernelStack adds a kstack line, before the first event naming it.
func (w *Writer) WriteKernelStack(s KernelStack) error {
	s.Type = "kstack"
	if w.bin != nil {
		return w.writeJSONRecord(recKStack, s)
	}
	return w.enc.Encode(s)
}

// Close writes the end line and flushes, then records the losses in the
// header too where the file allows.
func (w *Writer) Close(end End) error {
	end.Type, end.Events = "end", w.n
	var err error
	if w.bin != nil {
		err = w.writeJSONRecord(recEnd, end)
	} else {
		err = w.enc.Encode(end)
	}
	if err != nil {
		return err
	}
	if err := w.w.Flush(); err != nil {
		return err
	}
	var missed uint64
	for _, n := range end.Missed {
		missed += n
	}
	if w.at == nil || end.Lost == 0 && missed == 0 {
		return nil
	}
	if w.bin != nil {
		return w.rewriteLosses(end.Lost, missed)
	}
	h := w.header
	h.Lost, h.MissedCalls = end.Lost, missed
	b, err := json.Marshal(h)
	if err != nil || len(b) > w.room {
		return err
	}
	_, err = w.at.WriteAt(append(b, bytes.Repeat([]byte(" "), w.room-len(b))...), 0)
	return err
}

// Flush writes out what is buffered, without ending the trace.
func (w *Writer) Flush() error { return w.w.Flush() }

// Reader reads a trace record by record, either form. The process, ustack
// and kstack records it passes are kept in its tables, complete for every
// event Next returned.
type Reader struct {
	sc        *bufio.Scanner // JSON Lines
	bin       *binReader     // binary
	line      int
	Header    Header
	End       *End                   // set once the end line was read
	Processes map[int]*Process       // by pid, the latest line
	Paths     map[string]string      // build ID -> a path the traced file had (from the process lines)
	UStacks   map[uint64]UserStack   // by id
	KStacks   map[uint64]KernelStack // by id
	onTable   func(any)              // see OnTable
}

// NewReader reads and checks the header; the form, binary or JSON Lines,
// is told by the first bytes.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	rd := &Reader{onTable: func(any) {}, Processes: map[int]*Process{}, Paths: map[string]string{}, UStacks: map[uint64]UserStack{}, KStacks: map[uint64]KernelStack{}}
	m, _ := br.Peek(len(Magic))
	if len(m) > 0 && len(m) < len(Magic) && bytes.HasPrefix(Magic[:], m) {
		return nil, atOffset(0, fmt.Errorf("binary trace cut short in its magic number (%d of %d bytes)", len(m), len(Magic)))
	}
	if bytes.Equal(m, Magic[:]) {
		if err := newBinReader(br, rd); err != nil {
			return nil, err
		}
		return rd, rd.checkHeader(func(err error) error { return atOffset(10, err) })
	}
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	rd.sc = sc
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("line 1: %w", err)
		}
		return nil, errors.New("line 1: empty trace: want a header line")
	}
	rd.line = 1
	if err := json.Unmarshal(sc.Bytes(), &rd.Header); err != nil || rd.Header.Type != "header" {
		return nil, fmt.Errorf("line 1: not a cgpeak trace header (%v)", err)
	}
	return rd, rd.checkHeader(func(err error) error { return fmt.Errorf("line 1: %w", err) })
}

// OnTable has f called with each table record (a Process, UserStack or
// KernelStack) as Next reads it, so a copy can keep it in its place among
// the events.
func (r *Reader) OnTable(f func(any)) {
	if f == nil {
		f = func(any) {}
	}
	r.onTable = f
}

// Format says how the trace read is encoded.
func (r *Reader) Format() Format {
	if r.bin != nil {
		return Binary
	}
	return JSONL
}

func (r *Reader) checkHeader(at func(error) error) error {
	if r.Header.Schema > Schema {
		return at(fmt.Errorf("trace schema %d is newer than this cgpeak's %d: upgrade cgpeak", r.Header.Schema, Schema))
	}
	if r.Header.CommandBuildID != "" {
		r.Paths[r.Header.CommandBuildID] = r.Header.CommandPath
	}
	if err := r.Header.check(); err != nil {
		return at(err)
	}
	return nil
}

// table reads a record other than an event: the end, or a table record.
func (r *Reader) table(typ byte, b []byte) error {
	switch typ {
	case recEnd:
		r.End = &End{}
		if err := json.Unmarshal(b, r.End); err != nil {
			return err
		}
		r.End.Type = "end" // a binary record's type is its framing's
		return r.End.check(r.Header.PageSize)
	case recProcess:
		var p Process
		if err := json.Unmarshal(b, &p); err != nil {
			return err
		}
		p.Type = "process"
		r.Processes[p.PID] = &p
		for _, m := range p.Mappings {
			if m.BuildID != "" {
				r.Paths[m.BuildID] = m.Path
			}
		}
		r.onTable(p)
	case recUStack:
		var s UserStack
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		s.Type = "ustack"
		r.UStacks[s.ID] = s
		r.onTable(s)
	case recKStack:
		var s KernelStack
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		s.Type = "kstack"
		r.KStacks[s.ID] = s
		r.onTable(s)
	}
	return nil
}

// Limits on a trace's figures. No kernel has more: a page count past
// MaxPages (4 PiB of 4 KiB pages) or a page size past MaxPageSize is a
// corrupt trace, and within them pages x page_size fits in 63 bits.
const (
	MaxPages    = 1 << 40
	MaxPageSize = 1 << 21
	MaxBatch    = 1 << 16
	MaxCPUs     = 1 << 16
)

func (h *Header) check() error {
	switch {
	case h.Batch == 0 || h.PageSize == 0:
		return errors.New("header lacks batch_pages or page_size")
	case h.Batch > MaxBatch:
		return fmt.Errorf("batch_pages %d is out of range (1 to %d)", h.Batch, MaxBatch)
	case h.PageSize < 512 || h.PageSize > MaxPageSize || h.PageSize&(h.PageSize-1) != 0:
		return fmt.Errorf("page_size %d is not a power of two from 512 to %d", h.PageSize, MaxPageSize)
	case h.CPUs < 0 || h.CPUs > MaxCPUs:
		return fmt.Errorf("cpus %d is out of range (0 to %d)", h.CPUs, MaxCPUs)
	}
	return nil
}

// pagesField checks one page count.
func pagesField(name string, v uint64) error {
	if v > MaxPages {
		return fmt.Errorf("%s %d is out of range (at most %d pages)", name, v, uint64(MaxPages))
	}
	return nil
}

// check range-checks an event's fields.
func check(e *Event) error {
	if e.Op == 0 {
		return errors.New("no op")
	}
	switch {
	case e.CPU < 0 || e.CPU >= MaxCPUs:
		return fmt.Errorf("cpu %d is out of range (0 to %d)", e.CPU, MaxCPUs-1)
	case e.FromCPU != nil && (*e.FromCPU < 0 || *e.FromCPU >= MaxCPUs):
		return fmt.Errorf("from_cpu %d is out of range (0 to %d)", *e.FromCPU, MaxCPUs-1)
	case e.PID < 0 || e.TID < 0:
		return fmt.Errorf("pid %d / tid %d: negative", e.PID, e.TID)
	case e.Real < -MaxPages || e.Real > MaxPages:
		return fmt.Errorf("real %d is out of range (at most %d pages either way)", e.Real, int64(MaxPages))
	}
	if e.Pages|e.Usage|e.Watermark|e.Consumed|e.Stocked <= MaxPages { // all in range: MaxPages is a power of two
		return nil
	}
	for _, f := range []struct {
		name string
		v    uint64
	}{{"pages", e.Pages}, {"usage", e.Usage}, {"watermark", e.Watermark}, {"consumed", e.Consumed}, {"stocked", e.Stocked}} {
		if err := pagesField(f.name, f.v); err != nil {
			return err
		}
	}
	return nil
}

func (e *End) check(pageSize uint64) error {
	if e.PeakBytes != nil && *e.PeakBytes > MaxPages*pageSize {
		return fmt.Errorf("cgroup_peak_bytes %d is out of range (at most %d pages of %d bytes)", *e.PeakBytes, uint64(MaxPages), pageSize)
	}
	if c := e.Reconciliation; c != nil && (c.StatPages < 0 || c.StatPages > MaxPages || c.SumPages < -MaxPages || c.SumPages > MaxPages) {
		return fmt.Errorf("reconciliation: memory_stat_pages %d, traced_sum_pages %d: out of range (0 to %d, and at most %d either way)", c.StatPages, c.SumPages, int64(MaxPages), int64(MaxPages))
	}
	if e.Summary == nil {
		return nil
	}
	for cpu, c := range e.Summary.CPUs {
		if cpu < 0 || cpu >= MaxCPUs {
			return fmt.Errorf("summary: cpu %d is out of range (0 to %d)", cpu, MaxCPUs-1)
		}
		for _, f := range []struct {
			name string
			v    uint64
		}{{"from_stock_pages", c.FromStockPages}, {"pending", c.Pending}, {"watermark", c.Watermark}} {
			if err := pagesField("summary: cpu "+fmt.Sprint(cpu)+" "+f.name, f.v); err != nil {
				return err
			}
		}
		if c.MaxReal < -MaxPages || c.MaxReal > MaxPages || c.WatermarkReal < -MaxPages || c.WatermarkReal > MaxPages {
			return fmt.Errorf("summary: cpu %d: real use out of range (at most %d pages either way)", cpu, int64(MaxPages))
		}
	}
	return nil
}

// Next returns the next event, io.EOF at the end.
func (r *Reader) Next() (Event, error) {
	if r.bin != nil {
		return r.nextBinary()
	}
	for r.sc.Scan() {
		r.line++
		b := r.sc.Bytes()
		if len(b) == 0 {
			continue
		}
		if r.End != nil {
			return Event{}, fmt.Errorf("line %d: data after the end line", r.line)
		}
		var e Event
		if fastEvent(b, &e) {
			if err := check(&e); err != nil {
				return Event{}, fmt.Errorf("line %d: %w", r.line, err)
			}
			return e, nil
		}
		e = Event{}
		var probe struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(b, &probe); err != nil {
			return Event{}, fmt.Errorf("line %d: %w", r.line, err)
		}
		if probe.Type != "" {
			typ, ok := map[string]byte{"end": recEnd, "process": recProcess, "ustack": recUStack, "kstack": recKStack}[probe.Type]
			if !ok {
				return Event{}, fmt.Errorf("line %d: unexpected %q line", r.line, probe.Type)
			}
			if err := r.table(typ, b); err != nil {
				return Event{}, fmt.Errorf("line %d: %w", r.line, err)
			}
			continue
		}
		if err := json.Unmarshal(b, &e); err != nil {
			return Event{}, fmt.Errorf("line %d: %w", r.line, err)
		}
		if err := check(&e); err != nil {
			return Event{}, fmt.Errorf("line %d: %w", r.line, err)
		}
		return e, nil
	}
	if err := r.sc.Err(); err != nil {
		return Event{}, fmt.Errorf("line %d: %w", r.line+1, err)
	}
	return Event{}, io.EOF
}

// Events counts the events written so far.
func (w *Writer) Events() uint64 { return w.n }
