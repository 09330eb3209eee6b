// Package trace is the saved form of a charge trace: JSON Lines, a header
// line, one event a line, and an end line (docs/trace-format.md). It is read
// back as a stream so a trace of any length explains in bounded memory.
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

// Schema is the version of the format; readers refuse newer ones.
const Schema = 1

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
	Attached      bool     `json:"attached,omitempty"` // tracing began on a running cgroup
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
}

// Writer writes a trace.
type Writer struct {
	w      *bufio.Writer
	enc    *json.Encoder
	n      uint64
	at     io.WriterAt // the file, when its header can be rewritten at the end
	header Header
	room   int // bytes the header line has before its newline
}

// headerRoom is the padding after the header, so the losses found at the
// end fit in when the header is rewritten (JSON allows trailing blanks).
const headerRoom = 128

// NewWriter writes the header.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	h.Type, h.Schema = "header", Schema
	bw := bufio.NewWriterSize(w, 1<<16)
	tw := &Writer{w: bw, enc: json.NewEncoder(bw), header: h}
	b, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	if f, ok := w.(interface {
		io.WriterAt
		io.Seeker
	}); ok {
		if off, err := f.Seek(0, io.SeekCurrent); err == nil && off == 0 {
			tw.at = f
			b = append(b, bytes.Repeat([]byte(" "), headerRoom)...)
		}
	}
	tw.room = len(b)
	_, err = bw.Write(append(b, '\n'))
	return tw, err
}

// Write adds an event.
func (w *Writer) Write(e Event) error {
	w.n++
	return w.enc.Encode(e)
}

// Close writes the end line and flushes, then records the losses in the
// header too where the file allows.
func (w *Writer) Close(end End) error {
	end.Type, end.Events = "end", w.n
	if err := w.enc.Encode(end); err != nil {
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
	h := w.header
	h.Lost, h.MissedCalls = end.Lost, missed
	b, err := json.Marshal(h)
	if err != nil || len(b) > w.room {
		return err
	}
	_, err = w.at.WriteAt(append(b, bytes.Repeat([]byte(" "), w.room-len(b))...), 0)
	return err
}

// Reader reads a trace line by line.
type Reader struct {
	sc     *bufio.Scanner
	line   int
	Header Header
	End    *End // set once the end line was read
}

// NewReader reads and checks the header.
func NewReader(r io.Reader) (*Reader, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	rd := &Reader{sc: sc}
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
	if rd.Header.Schema > Schema {
		return nil, fmt.Errorf("line 1: trace schema %d is newer than this cgpeak's %d: upgrade cgpeak", rd.Header.Schema, Schema)
	}
	if err := rd.Header.check(); err != nil {
		return nil, fmt.Errorf("line 1: %w", err)
	}
	return rd, nil
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
	case e.PID < 0 || e.TID < 0:
		return fmt.Errorf("pid %d / tid %d: negative", e.PID, e.TID)
	case e.Real < -MaxPages || e.Real > MaxPages:
		return fmt.Errorf("real %d is out of range (at most %d pages either way)", e.Real, int64(MaxPages))
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
		if probe.Type == "end" {
			r.End = &End{}
			if err := json.Unmarshal(b, r.End); err != nil {
				return Event{}, fmt.Errorf("line %d: %w", r.line, err)
			}
			if err := r.End.check(r.Header.PageSize); err != nil {
				return Event{}, fmt.Errorf("line %d: %w", r.line, err)
			}
			continue
		}
		if probe.Type != "" {
			return Event{}, fmt.Errorf("line %d: unexpected %q line", r.line, probe.Type)
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
