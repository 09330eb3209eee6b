package trace

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/cgpeak/cgpeak/analysis"
)

// The binary form of a trace (docs/trace-format.md, "Binary form"). It is
// written by hand rather than with a serialization library: events are a
// few small integers each, and what keeps up with millions a second is
// what no general encoder does: times as deltas from the previous event,
// tids as deltas from the pid, and names written once in a string table
// that events refer to by number. The rare records (header, end, tables)
// stay JSON inside the framing, so fields added to them need no change
// here.

// Magic opens every binary trace. Its first byte cannot start a JSON
// text, so readers tell the two forms apart from it.
var Magic = [8]byte{0x89, 'C', 'G', 'P', 'E', 'A', 'K', '\n'}

// BinaryVersion is the version of the binary framing and event encoding,
// written after Magic; readers refuse newer ones. What the header, end and
// table records mean is still versioned by the header's schema.
const BinaryVersion = 1

// Record types.
const (
	recHeader  = 1 // 16 bytes of fixed-width losses, then the header as JSON
	recEnd     = 2 // JSON
	recProcess = 3 // JSON
	recUStack  = 4 // JSON
	recKStack  = 5 // JSON
	recString  = 6 // the bytes of the next string of the table
	recEvent   = 7 // the compact event
)

// Bounds on records, so a corrupt length never makes a reader allocate
// more than this much: a JSON record as long as a JSON Lines reader's
// longest line, an event as long as its reader's buffer (room for names
// far longer than the kernel's: KSYM_NAME_LEN is 512).
const (
	maxJSONRecord  = 1 << 20
	maxEventRecord = 64 << 10
	// MaxString is the longest string a string record holds; longer
	// names are written in the event itself.
	MaxString = 4096
	// maxStrings and maxStringBytes bound the string table: beyond them
	// the writer writes strings inline and the reader refuses more.
	maxStrings     = 1 << 16
	maxStringBytes = 16 << 20
)

// Event field bits, in the order their values follow the fixed part. A
// reader that meets a bit it does not know has read every field it knows
// (theirs come first) and ignores the rest of the record.
const (
	fCounter = 1 << iota
	fUsage
	fWatermark
	fKind
	fCaller
	fUStack
	fKStack
	fGfp
	fForced
	fFailed
	fConsumed
	fFromCPU
	fCgroup
	fStocked
	fReal
	fKnown = fReal<<1 - 1
)

// Op tags, fixed by the format whatever analysis numbers its ops.
var opTags = []analysis.Op{1: analysis.OpCharge, 2: analysis.OpCounterCharge, 3: analysis.OpCounterUncharge, 4: analysis.OpRefill,
	5: analysis.OpDrain, 6: analysis.OpStatAdd, 7: analysis.OpStatSub}

var tagOfOp = func() map[analysis.Op]byte {
	m := map[analysis.Op]byte{}
	for t, o := range opTags {
		if o != 0 {
			m[o] = byte(t)
		}
	}
	return m
}()

// binWriter is the binary encoding state of a Writer.
type binWriter struct {
	strs     map[string]uint64 // string -> its ref (index + 2)
	strBytes int
	last     [5]struct { // per string field, the last string and its ref: most events repeat them
		s   string
		ref uint64
	}
	prevT   uint64
	scratch []byte
	lossAt  int64 // offset of the header's fixed-width losses
}

const (
	refEmpty  = 0
	refInline = 1 // a uvarint length and the bytes follow
)

func newBinWriter() *binWriter {
	return &binWriter{strs: map[string]uint64{}, scratch: make([]byte, 0, 256)}
}

// writeBinaryHeader writes the magic, the version and the header record.
func (w *Writer) writeBinaryHeader(rewritable bool) error {
	h := w.header
	h.Lost, h.MissedCalls = 0, 0 // in the fixed-width fields
	js, err := json.Marshal(h)
	if err != nil {
		return err
	}
	b := append(Magic[:0:0], Magic[:]...)
	b = binary.LittleEndian.AppendUint16(b, BinaryVersion)
	b = append(b, recHeader)
	b = binary.AppendUvarint(b, uint64(16+len(js)))
	w.bin.lossAt = int64(len(b))
	b = binary.LittleEndian.AppendUint64(b, w.header.Lost)
	b = binary.LittleEndian.AppendUint64(b, w.header.MissedCalls)
	b = append(b, js...)
	if !rewritable {
		w.bin.lossAt = -1
	}
	_, err = w.w.Write(b)
	return err
}

// writeJSONRecord writes a record whose payload is v as JSON.
func (w *Writer) writeJSONRecord(typ byte, v any) error {
	js, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(js) > maxJSONRecord {
		return fmt.Errorf("a record of %d bytes: longer than the format's %d", len(js), maxJSONRecord)
	}
	return w.writeRecord(typ, js)
}

func (w *Writer) writeRecord(typ byte, payload []byte) error {
	var hdr [1 + binary.MaxVarintLen64]byte
	hdr[0] = typ
	n := binary.PutUvarint(hdr[1:], uint64(len(payload)))
	if _, err := w.w.Write(hdr[:1+n]); err != nil {
		return err
	}
	_, err := w.w.Write(payload)
	return err
}

// ref returns s's string ref for field slot i, writing a string record
// the first time s is seen (while the table has room).
func (w *Writer) ref(i int, s string) (uint64, error) {
	if s == "" {
		return refEmpty, nil
	}
	b := w.bin
	if l := &b.last[i]; l.ref != 0 && l.s == s {
		return l.ref, nil
	}
	ref, ok := b.strs[s]
	if !ok {
		if len(s) > MaxString || len(b.strs) >= maxStrings || b.strBytes+len(s) > maxStringBytes {
			return refInline, nil
		}
		if err := w.writeRecord(recString, []byte(s)); err != nil {
			return 0, err
		}
		ref = uint64(len(b.strs)) + 2
		b.strs[s] = ref
		b.strBytes += len(s)
	}
	b.last[i] = struct {
		s   string
		ref uint64
	}{s, ref}
	return ref, nil
}

func appendRef(p []byte, ref uint64, s string) []byte {
	p = binary.AppendUvarint(p, ref)
	if ref == refInline {
		p = binary.AppendUvarint(p, uint64(len(s)))
		p = append(p, s...)
	}
	return p
}

func appendZigzag(p []byte, v int64) []byte {
	return binary.AppendUvarint(p, uint64(v<<1)^uint64(v>>63))
}

// writeBinaryEvent encodes e as one event record.
func (w *Writer) writeBinaryEvent(e *Event) error {
	tag, ok := tagOfOp[e.Op]
	if !ok {
		return fmt.Errorf("unknown op %d", e.Op)
	}
	var refs [5]uint64
	strs := [5]string{e.Comm, e.Fn, e.Counter, e.Kind, e.Caller}
	for i, s := range strs {
		r, err := w.ref(i, s)
		if err != nil {
			return err
		}
		refs[i] = r
	}
	var flags uint64
	set := func(bit uint64, on bool) {
		if on {
			flags |= bit
		}
	}
	set(fCounter, e.Counter != "")
	set(fUsage, e.Usage != 0)
	set(fWatermark, e.Watermark != 0)
	set(fKind, e.Kind != "")
	set(fCaller, e.Caller != "")
	set(fUStack, e.UStack != 0)
	set(fKStack, e.KStack != 0)
	set(fGfp, e.Gfp != 0)
	set(fForced, e.Forced)
	set(fFailed, e.Failed)
	set(fConsumed, e.Consumed != 0)
	set(fFromCPU, e.FromCPU != nil)
	set(fCgroup, e.Cgroup != 0)
	set(fStocked, e.Stocked != 0)
	set(fReal, e.Real != 0)

	// Type and a one-byte length, fixed up below when the payload is
	// longer than 127 bytes (rare: inline strings).
	p := append(w.bin.scratch[:0], recEvent, 0)
	p = binary.AppendUvarint(p, flags)
	p = append(p, tag)
	p = appendZigzag(p, int64(e.Time-w.bin.prevT))
	p = appendZigzag(p, int64(e.CPU))
	p = appendZigzag(p, int64(e.PID))
	p = appendZigzag(p, int64(e.TID)-int64(e.PID))
	p = appendRef(p, refs[0], e.Comm)
	p = appendRef(p, refs[1], e.Fn)
	p = binary.AppendUvarint(p, e.Pages)
	if flags&fCounter != 0 {
		p = appendRef(p, refs[2], e.Counter)
	}
	if flags&fUsage != 0 {
		p = binary.AppendUvarint(p, e.Usage)
	}
	if flags&fWatermark != 0 {
		p = binary.AppendUvarint(p, e.Watermark)
	}
	if flags&fKind != 0 {
		p = appendRef(p, refs[3], e.Kind)
	}
	if flags&fCaller != 0 {
		p = appendRef(p, refs[4], e.Caller)
	}
	if flags&fUStack != 0 {
		p = binary.AppendUvarint(p, e.UStack)
	}
	if flags&fKStack != 0 {
		p = binary.AppendUvarint(p, e.KStack)
	}
	if flags&fGfp != 0 {
		p = binary.AppendUvarint(p, uint64(e.Gfp))
	}
	if flags&fConsumed != 0 {
		p = binary.AppendUvarint(p, e.Consumed)
	}
	if flags&fFromCPU != 0 {
		p = appendZigzag(p, int64(*e.FromCPU))
	}
	if flags&fCgroup != 0 {
		p = binary.AppendUvarint(p, e.Cgroup)
	}
	if flags&fStocked != 0 {
		p = binary.AppendUvarint(p, e.Stocked)
	}
	if flags&fReal != 0 {
		p = appendZigzag(p, e.Real)
	}
	w.bin.scratch = p
	n := len(p) - 2
	if n > maxEventRecord {
		return fmt.Errorf("an event of %d bytes: longer than the format's %d", n, maxEventRecord)
	}
	w.bin.prevT = e.Time
	if n < 0x80 {
		p[1] = byte(n)
		_, err := w.w.Write(p)
		return err
	}
	return w.writeRecord(recEvent, p[2:])
}

// rewriteLosses puts the losses into the header's fixed-width fields.
func (w *Writer) rewriteLosses(lost, missed uint64) error {
	if w.bin.lossAt < 0 {
		return nil
	}
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:], lost)
	binary.LittleEndian.PutUint64(b[8:], missed)
	_, err := w.at.WriteAt(b[:], w.bin.lossAt)
	return err
}

// binReader reads the binary form; off is where the next record starts.
type binReader struct {
	r        *bufio.Reader
	off      int64
	strs     []string
	strBytes int
	prevT    uint64
	headLen  int  // bytes of the current record's type and length
	copied   bool // the current payload was read out of the buffer
}

// offsetError names the offset of the record a problem is in.
type offsetError struct {
	off int64
	err error
}

func (e *offsetError) Error() string { return fmt.Sprintf("offset %d: %v", e.off, e.err) }
func (e *offsetError) Unwrap() error { return e.err }

func atOffset(off int64, err error) error { return &offsetError{off, err} }

// newBinReader reads the version and the header record; the magic was
// seen but not consumed.
func newBinReader(br *bufio.Reader, rd *Reader) error {
	b := &binReader{r: br}
	var start [10]byte
	if _, err := io.ReadFull(br, start[:]); err != nil {
		return atOffset(0, fmt.Errorf("binary trace cut short before its version: %w", noEOF(err)))
	}
	b.off = 10
	switch v := binary.LittleEndian.Uint16(start[8:]); {
	case v == 0:
		return atOffset(8, errors.New("binary trace version 0: no cgpeak writes it"))
	case v > BinaryVersion:
		return atOffset(8, fmt.Errorf("binary trace version %d is newer than this cgpeak's %d: upgrade cgpeak", v, BinaryVersion))
	}
	typ, n, err := b.recordHead()
	if err == io.EOF {
		return atOffset(b.off, errors.New("binary trace without a header record"))
	}
	if err != nil {
		return err
	}
	if typ != recHeader {
		return atOffset(b.off, fmt.Errorf("record type %d where the header record must be", typ))
	}
	if n < 16 || n > maxJSONRecord {
		return atOffset(b.off, fmt.Errorf("header record of %d bytes (16 to %d)", n, maxJSONRecord))
	}
	p, err := b.payload(n)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(p[16:], &rd.Header); err != nil || rd.Header.Type != "header" {
		return atOffset(b.off, fmt.Errorf("not a cgpeak trace header (%v)", err))
	}
	rd.Header.Lost = binary.LittleEndian.Uint64(p)
	rd.Header.MissedCalls = binary.LittleEndian.Uint64(p[8:])
	b.next(n)
	rd.bin = b
	return nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// recordHead reads a record's type and length; io.EOF only where no record
// begins.
func (b *binReader) recordHead() (typ byte, n int, err error) {
	h, _ := b.r.Peek(1 + binary.MaxVarintLen64) // fewer at the end: Uvarint says so
	if len(h) == 0 {
		if _, err := b.r.ReadByte(); err != io.EOF {
			return 0, 0, atOffset(b.off, err)
		}
		return 0, 0, io.EOF
	}
	typ = h[0]
	l, k := binary.Uvarint(h[1:])
	switch {
	case k == 0:
		return 0, 0, atOffset(b.off, fmt.Errorf("record length: %w", io.ErrUnexpectedEOF))
	case k < 0:
		return 0, 0, atOffset(b.off, errors.New("record length: varint overflows 64 bits"))
	}
	max := uint64(maxJSONRecord)
	switch typ {
	case recEvent:
		max = maxEventRecord
	case recString:
		max = MaxString
	}
	if l > max {
		return 0, 0, atOffset(b.off, fmt.Errorf("record of type %d is %d bytes long: at most %d", typ, l, max))
	}
	b.r.Discard(1 + k)
	b.headLen = 1 + k
	return typ, int(l), nil
}

// payload returns a record's n bytes: in the reader's buffer where they
// fit (valid until the next read), else a copy.
func (b *binReader) payload(n int) ([]byte, error) {
	if n <= b.r.Size() {
		p, err := b.r.Peek(n)
		if err != nil {
			return nil, atOffset(b.off, fmt.Errorf("record cut short: %d of its %d bytes: %w", len(p), n, noEOF(err)))
		}
		return p, nil
	}
	p := make([]byte, n)
	if k, err := io.ReadFull(b.r, p); err != nil {
		return nil, atOffset(b.off, fmt.Errorf("record cut short: %d of its %d bytes: %w", k, n, noEOF(err)))
	}
	b.copied = true
	return p, nil
}

// next moves past a record whose payload of n bytes was read.
func (b *binReader) next(n int) {
	if !b.copied {
		b.r.Discard(n)
	}
	b.copied = false
	b.off += int64(b.headLen + n)
}

// skip moves past a record of a type this reader does not know.
func (b *binReader) skip(n int) error {
	if k, err := b.r.Discard(n); err != nil {
		return atOffset(b.off, fmt.Errorf("record cut short: %d of its %d bytes: %w", k, n, noEOF(err)))
	}
	b.off += int64(b.headLen + n)
	return nil
}

// decoder walks one event record's payload.
type decoder struct {
	p   []byte
	i   int
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.i < len(d.p) && d.p[d.i] < 0x80 { // most fields are a byte
		d.i++
		return uint64(d.p[d.i-1])
	}
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.p[d.i:])
	if n <= 0 {
		d.err = fmt.Errorf("bad varint at byte %d of the record", d.i)
		return 0
	}
	d.i += n
	return v
}

func (d *decoder) zigzag() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (d *decoder) int(name string) int {
	v := d.zigzag()
	if v < math.MinInt || v > math.MaxInt {
		d.fail(fmt.Errorf("%s %d is out of range", name, v))
		return 0
	}
	return int(v)
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) str(strs []string) string {
	ref := d.uvarint()
	switch {
	case d.err != nil || ref == refEmpty:
		return ""
	case ref == refInline:
		n := d.uvarint()
		if d.err == nil && n > uint64(len(d.p)-d.i) {
			d.fail(fmt.Errorf("an inline string of %d bytes past the record's end", n))
		}
		if d.err != nil {
			return ""
		}
		s := intern(d.p[d.i : d.i+int(n)])
		d.i += int(n)
		return s
	case ref-2 >= uint64(len(strs)):
		d.fail(fmt.Errorf("string %d is not defined (%d are)", ref-2, len(strs)))
		return ""
	}
	return strs[ref-2]
}

// decodeEvent decodes an event record's payload.
func (b *binReader) decodeEvent(p []byte, e *Event) error {
	d := decoder{p: p}
	flags := d.uvarint()
	if d.err == nil && d.i >= len(p) {
		return errors.New("event record cut short before its op")
	}
	if d.err != nil {
		return d.err
	}
	tag := p[d.i]
	d.i++
	if int(tag) >= len(opTags) || opTags[tag] == 0 {
		return fmt.Errorf("unknown op %d", tag)
	}
	e.Op = opTags[tag]
	e.Time = b.prevT + uint64(d.zigzag())
	e.CPU = d.int("cpu")
	e.PID = d.int("pid")
	e.TID = int(int64(e.PID) + d.zigzag()) // wraps as the writer's difference did
	e.Comm = d.str(b.strs)
	e.Fn = d.str(b.strs)
	e.Pages = d.uvarint()
	if flags&fCounter != 0 {
		e.Counter = d.str(b.strs)
	}
	if flags&fUsage != 0 {
		e.Usage = d.uvarint()
	}
	if flags&fWatermark != 0 {
		e.Watermark = d.uvarint()
	}
	if flags&fKind != 0 {
		e.Kind = d.str(b.strs)
	}
	if flags&fCaller != 0 {
		e.Caller = d.str(b.strs)
	}
	if flags&fUStack != 0 {
		e.UStack = d.uvarint()
	}
	if flags&fKStack != 0 {
		e.KStack = d.uvarint()
	}
	if flags&fGfp != 0 {
		g := d.uvarint()
		if g > math.MaxUint32 {
			d.fail(fmt.Errorf("gfp %d is out of range", g))
		}
		e.Gfp = uint32(g)
	}
	e.Forced = flags&fForced != 0
	e.Failed = flags&fFailed != 0
	if flags&fConsumed != 0 {
		e.Consumed = d.uvarint()
	}
	if flags&fFromCPU != 0 {
		from := d.int("from_cpu")
		e.FromCPU = &from
	}
	if flags&fCgroup != 0 {
		e.Cgroup = d.uvarint()
	}
	if flags&fStocked != 0 {
		e.Stocked = d.uvarint()
	}
	if flags&fReal != 0 {
		e.Real = d.zigzag()
	}
	if d.err != nil {
		return d.err
	}
	b.prevT = e.Time
	return nil
}

// nextBinary reads records up to the next event.
func (r *Reader) nextBinary() (Event, error) {
	b := r.bin
	for {
		typ, n, err := b.recordHead()
		if err != nil {
			return Event{}, err
		}
		if r.End != nil {
			return Event{}, atOffset(b.off, errors.New("data after the end record"))
		}
		switch typ {
		case recEvent:
			p, err := b.payload(n)
			if err != nil {
				return Event{}, err
			}
			var e Event
			if err := b.decodeEvent(p, &e); err != nil {
				return Event{}, atOffset(b.off, err)
			}
			if err := check(&e); err != nil {
				return Event{}, atOffset(b.off, err)
			}
			b.next(n)
			return e, nil
		case recString:
			p, err := b.payload(n)
			if err != nil {
				return Event{}, err
			}
			if len(b.strs) >= maxStrings || b.strBytes+n > maxStringBytes {
				return Event{}, atOffset(b.off, fmt.Errorf("string table full (%d strings, %d bytes)", len(b.strs), b.strBytes))
			}
			b.strs = append(b.strs, intern(p))
			b.strBytes += n
			b.next(n)
		case recEnd, recProcess, recUStack, recKStack:
			p, err := b.payload(n)
			if err != nil {
				return Event{}, err
			}
			if err := r.table(typ, p); err != nil {
				return Event{}, atOffset(b.off, err)
			}
			b.next(n)
		case recHeader:
			return Event{}, atOffset(b.off, errors.New("a second header record"))
		default:
			// A record type of a later version: its length says how far
			// to skip.
			if err := b.skip(n); err != nil {
				return Event{}, err
			}
		}
	}
}
