package trace

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/cgpeak/cgpeak/analysis"
)

// record is what a trace holds between its header and its end, in order:
// an Event, a Process, a UserStack or a KernelStack.
type record = any

// readRecords reads a whole trace, keeping the table records in their
// place among the events.
func readRecords(r io.Reader, max int) (Header, []record, *End, error) {
	rd, err := NewReader(r)
	if err != nil {
		return Header{}, nil, nil, err
	}
	var recs []record
	rd.onTable = func(v any) { recs = append(recs, v) }
	for len(recs) < max {
		e, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Header{}, nil, nil, err
		}
		recs = append(recs, e)
	}
	return rd.Header, recs, rd.End, nil
}

// writeRecords writes them back in format f; without an end, the trace is
// left cut short, as a trace whose recorder died.
func writeRecords(t testing.TB, w io.Writer, f Format, h Header, recs []record, end *End) {
	t.Helper()
	tw, err := NewFormatWriter(w, h, f)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		switch v := r.(type) {
		case Event:
			err = tw.Write(v)
		case Process:
			err = tw.WriteProcess(v)
		case UserStack:
			err = tw.WriteUserStack(v)
		case KernelStack:
			err = tw.WriteKernelStack(v)
		default:
			t.Fatalf("record %T", r)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if end != nil {
		err = tw.Close(*end)
	} else {
		err = tw.Flush()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// sameRecords compares two record lists, events by value (FromCPU by what
// it points at).
func sameRecords(a, b []record) (int, bool) {
	if len(a) != len(b) {
		return min(len(a), len(b)), false
	}
	for i := range a {
		ea, ok1 := a[i].(Event)
		eb, ok2 := b[i].(Event)
		if ok1 != ok2 || ok1 && !sameEvent(ea, eb) || !ok1 && !sameJSON(a[i], b[i]) {
			return i, false
		}
	}
	return 0, true
}

// fullEvent has every stored field of an event set, none to its zero.
func fullEvent() Event {
	from := 3
	return Event{Time: 1 << 62, CPU: 65535, PID: 1 << 30, TID: 7, Comm: "touch pages", Op: analysis.OpCharge, Fn: "try_charge_memcg",
		Counter: "swap", Pages: MaxPages, Usage: MaxPages - 1, Watermark: MaxPages, Forced: true, Failed: true, Gfp: 1<<32 - 1,
		Kind: "anon", Caller: "do_anonymous_page", Consumed: 63, FromCPU: &from, Cgroup: 1<<64 - 1, Stocked: 12, Real: -MaxPages,
		UStack: 1<<64 - 1, KStack: 1 << 63}
}

// Every field a trace stores comes back from the binary form, and every
// record type: a field the encoder forgot fails here, for fullEvent must
// set them all.
func TestBinaryRoundTripEveryField(t *testing.T) {
	full := fullEvent()
	v := reflect.ValueOf(full)
	for i := 0; i < v.NumField(); i++ {
		if f := v.Type().Field(i); f.Tag.Get("json") != "-" && v.Field(i).IsZero() {
			t.Fatalf("fullEvent leaves %s zero: set it, so the round trip covers it", f.Name)
		}
	}
	long := strings.Repeat("x", MaxString+1) // written inline, not in the table
	peak := uint64(1 << 30)
	h := Header{Kernel: "6.1.0", Batch: 64, BatchSource: "uname", CPUs: 2, PageSize: 4096, Backend: "fentry", Mode: "charges", Descendants: true,
		Cgroup: "/sys/fs/cgroup/x", CgroupID: 99, CgroupVersion: 2, Command: []string{"a", "b c"}, CommandPath: "/bin/a", CommandBuildID: "abcd",
		Attached: true, StocksRead: true, Functions: map[string]string{"refill_stock": "refill_stock"}, CannotSee: []string{"stocks"},
		Started: "2026-12-04T19:00:00Z", Lost: 3, MissedCalls: 4}
	recs := []record{
		Process{Type: "process", PID: 7, Comm: "a", Mappings: []Mapping{{Start: 0x401000, End: 0x402000, Offset: 0x1000, Path: "/bin/a", BuildID: "abcd", Error: "e"}}, Error: "x"},
		UserStack{Type: "ustack", ID: 3, Frames: []UserFrame{{IP: 0x401010}, {BuildID: "abcd", Offset: 0x1200}}, Truncated: true},
		KernelStack{Type: "kstack", ID: 1 << 63, Frames: []string{"try_charge_memcg", "do_anonymous_page"}},
		full,
		Event{Time: 5, Op: analysis.OpRefill, Fn: "refill_stock", Pages: 63},                   // time goes back: a negative delta
		Event{Time: 6, PID: 9, TID: 1, Op: analysis.OpDrain, Comm: long, Fn: long, Kind: long}, // tid below pid; inline strings
		Event{Time: 1<<64 - 1, Op: analysis.OpStatSub, Real: MaxPages, Comm: "touch pages"},
		Event{Time: 0, Op: analysis.OpStatAdd, CPU: 1, Comm: "touch pages", Fn: "mod_memcg_state", Kind: "sock"},
		Event{Time: 0, Op: analysis.OpCounterUncharge, Counter: "memory"},
		Event{Time: 8, Op: analysis.OpCounterCharge, Counter: "memory", FromCPU: new(int)}, // from_cpu 0 is not absent
	}
	end := &End{Type: "end", Events: 7, Lost: 3, Missed: map[string]uint64{"a": 4}, Summary: &analysis.Summary{CPUs: map[int]analysis.SummaryCPU{1: {FromStock: 1, FromStockPages: 2,
		Pending: 3, MaxReal: -4, MaxRealTime: 5, Watermark: 6, WatermarkReal: 7, WatermarkTime: 8, StatAdded: 9, StatRemoved: 10, StatKinds: map[string]uint64{"anon": 11}}}, Stats: true},
		Cgroups: map[string]string{"99": "/x"}, PeakBytes: &peak, PeakSource: "memory.peak", PeakUnavailable: "no", UserStacks: &StackCounts{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}}
	var buf bytes.Buffer
	writeRecords(t, &buf, Binary, h, recs, end)
	if !bytes.HasPrefix(buf.Bytes(), Magic[:]) {
		t.Fatalf("no magic number: % x", buf.Bytes()[:8])
	}
	h2, recs2, end2, err := readRecords(bytes.NewReader(buf.Bytes()), 100)
	if err != nil {
		t.Fatal(err)
	}
	h.Type, h.Schema = "header", Schema
	if !reflect.DeepEqual(h, h2) {
		t.Errorf("header %+v\nread back as %+v", h, h2)
	}
	if i, ok := sameRecords(recs, recs2); !ok {
		t.Errorf("record %d differs:\n%+v\n%+v", i, recs, recs2)
	}
	if !reflect.DeepEqual(end, end2) {
		t.Errorf("end %+v\nread back as %+v", end, end2)
	}
	// The same through JSON Lines, so both forms hold the same.
	var jl bytes.Buffer
	writeRecords(t, &jl, JSONL, h, recs, end)
	_, recs3, _, err := readRecords(&jl, 100)
	if err != nil {
		t.Fatal(err)
	}
	if i, ok := sameRecords(recs, recs3); !ok {
		t.Errorf("JSON Lines: record %d differs", i)
	}
	t.Logf("binary %d bytes, JSON Lines %d bytes", buf.Len(), jl.Len())
}

// Events are compact: a per-charge event with names seen before takes a
// few bytes, not the hundred of a JSON line.
func TestBinaryEventsAreCompact(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{Batch: 64, PageSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	e := Event{Time: 11148427553, CPU: 1, PID: 153, TID: 153, Comm: "touchpages", Op: analysis.OpCharge, Fn: "try_charge_memcg", Pages: 1, Kind: "anon", Caller: "do_anonymous_page", UStack: 5, KStack: 9, Gfp: 0xcc0}
	w.Write(e)
	before := buf.Len() + w.w.Buffered()
	for i := 0; i < 1000; i++ {
		e.Time += 1000
		w.Write(e)
	}
	w.Flush()
	if per := float64(buf.Len()-before) / 1000; per > 24 {
		t.Errorf("%.1f bytes an event, want at most 24", per)
	}
}

// The recorded JSON Lines traces, schema 1 and 2, still read, and read the
// same once converted to the binary form.
func TestRecordedTracesConvert(t *testing.T) {
	files, _ := filepath.Glob("../testdata/traces/*.jsonl")
	files = append(files, "../testdata/userstacks/bookworm-smallbig-charges.jsonl")
	if len(files) == 0 {
		t.Fatal("no recorded traces")
	}
	schemas := map[int]bool{}
	for _, tf := range files {
		raw, err := os.ReadFile(tf)
		if err != nil {
			t.Fatal(err)
		}
		h, recs, end, err := readRecords(bytes.NewReader(raw), 1<<30)
		if err != nil {
			t.Fatalf("%s: %v", tf, err)
		}
		schemas[h.Schema] = true
		if end == nil || len(recs) == 0 {
			t.Fatalf("%s: %d records, end %v", tf, len(recs), end)
		}
		var buf bytes.Buffer
		writeRecords(t, &buf, Binary, h, recs, end)
		h2, recs2, end2, err := readRecords(&buf, 1<<30)
		if err != nil {
			t.Fatalf("%s, converted: %v", tf, err)
		}
		h.Type, h.Schema = "header", Schema
		if !reflect.DeepEqual(h, h2) || !reflect.DeepEqual(end, end2) {
			t.Errorf("%s: header or end differ once converted", tf)
		}
		if i, ok := sameRecords(recs, recs2); !ok {
			t.Errorf("%s: record %d differs once converted", tf, i)
		}
		if buf.Len()*3 > len(raw) {
			t.Errorf("%s: binary %d bytes, JSON Lines %d: want a third or less", tf, buf.Len(), len(raw))
		}
	}
	if !schemas[1] || !schemas[2] {
		t.Errorf("schemas read %v: want both 1 and 2 among the recorded traces", schemas)
	}
}

// recordStarts walks the framing on its own, for the offsets errors must
// name.
func recordStarts(t *testing.T, b []byte) []int {
	starts := []int{}
	for i := 10; i < len(b); {
		starts = append(starts, i)
		n, k := binary.Uvarint(b[i+1:])
		if k <= 0 {
			t.Fatalf("bad framing at %d", i)
		}
		i += 1 + k + int(n)
	}
	return starts
}

// A binary trace cut anywhere either reads as a trace cut short between
// records (no end) or fails naming the offset of the record it was cut in;
// never a panic.
func TestBinaryTruncated(t *testing.T) {
	var buf bytes.Buffer
	ev := fullEvent()
	writeRecords(t, &buf, Binary, Header{Batch: 64, PageSize: 4096, Functions: map[string]string{"a": "b"}},
		[]record{KernelStack{Type: "kstack", ID: 1, Frames: []string{"f"}}, ev, ev, Event{Time: 9, Op: analysis.OpDrain}}, &End{})
	b := buf.Bytes()
	starts := recordStarts(t, b)
	for cut := 0; cut < len(b); cut++ {
		_, recs, end, err := readRecords(bytes.NewReader(b[:cut]), 100)
		at := -1 // the record cut into
		for _, s := range starts {
			if s < cut {
				at = s
			}
		}
		boundary := false
		for _, s := range starts[1:] {
			boundary = boundary || s == cut
		}
		switch {
		case cut == 0:
			if err == nil || !strings.Contains(err.Error(), "empty trace") {
				t.Errorf("cut at 0: %v", err)
			}
		case cut < 10:
			if err == nil || !strings.HasPrefix(err.Error(), "offset 0: binary trace cut short") {
				t.Errorf("cut at %d: %v, want the cut named at offset 0", cut, err)
			}
		case boundary:
			if err != nil || end != nil {
				t.Errorf("cut at %d, between records: %v (end %v), want a trace cut short", cut, err, end)
			}
		case cut == starts[0]:
			if err == nil || !strings.Contains(err.Error(), "without a header record") {
				t.Errorf("cut at %d: %v", cut, err)
			}
		default:
			want := fmt.Sprintf("offset %d: ", at)
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("cut at %d: %v (%d records), want an error at %q", cut, err, len(recs), want)
			}
		}
	}
}

// Malformed binary traces fail naming the offset of the bad record.
func TestBinaryMalformed(t *testing.T) {
	var buf bytes.Buffer
	writeRecords(t, &buf, Binary, Header{Batch: 64, PageSize: 4096}, nil, nil)
	head := buf.String()
	ev := func(payload ...byte) string { return string(append([]byte{recEvent, byte(len(payload))}, payload...)) }
	end := string([]byte{recEnd, 2}) + "{}"
	o := len(head)
	for _, c := range []struct{ trace, want string }{
		{string(Magic[:]) + "\x02\x00", "offset 8: binary trace version 2 is newer than this cgpeak's 1: upgrade cgpeak"},
		{string(Magic[:]) + "\x01\x00\x07\x00", "offset 10: record type 7 where the header record must be"},
		{string(Magic[:]) + "\x01\x00\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "offset 10: record of type 1 is 18446744073709551615 bytes long"},
		{string(Magic[:]) + "\x01\x00\x01\x21" + strings.Repeat("\x00", 16) + `{"type":"header"}`, "offset 10: header lacks batch_pages"},
		{head + ev(0, 99), fmt.Sprintf("offset %d: unknown op 99", o)},
		{head + ev(0, 1, 0, 0x80, 0x80, 8, 0, 0, 0, 0, 0), fmt.Sprintf("offset %d: cpu 65536 is out of range", o)},
		{head + ev(0, 1, 0, 0, 1, 0, 0, 0, 0), fmt.Sprintf("offset %d: pid -1 / tid -1: negative", o)},
		{head + ev(0, 1, 0, 0, 0, 0, 5), fmt.Sprintf("offset %d: string 3 is not defined (0 are)", o)},
		{head + ev(0, 1, 0, 0, 0, 0, 1, 9, 'a'), fmt.Sprintf("offset %d: an inline string of 9 bytes past the record's end", o)},
		{head + ev(0, 1, 0, 0, 0, 0, 0, 0, 0xff), fmt.Sprintf("offset %d: bad varint", o)},
		{head + ev(0x80, 0x01, 1, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x10), fmt.Sprintf("offset %d: gfp 4294967296 is out of range", o)},
		{head + ev(), fmt.Sprintf("offset %d: bad varint", o)},
		{head + "\x07\x81\x80\x04", fmt.Sprintf("offset %d: record of type 7 is 65537 bytes long: at most %d", o, maxEventRecord)},
		{head + "\x07\x05\x00", fmt.Sprintf("offset %d: record cut short: 1 of its 5 bytes", o)},
		{head + end + ev(0, 1, 0, 0, 0, 0, 0, 0), fmt.Sprintf("offset %d: data after the end record", o+4)},
		{head + "\x01\x02{}", fmt.Sprintf("offset %d: a second header record", o)},
		{head + string([]byte{recEnd, 5}) + "{oops", fmt.Sprintf("offset %d: invalid character", o)},
	} {
		_, _, _, err := readRecords(strings.NewReader(c.trace), 100)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("% x: got %v, want %q", c.trace[min(len(c.trace), o):], err, c.want)
		}
	}
	// A record type of a later version is skipped by its length.
	_, recs, end2, err := readRecords(strings.NewReader(head+"\x63\x03abc"+ev(0, 1, 2, 0, 0, 0, 0, 0, 1)+end), 100)
	if err != nil || len(recs) != 1 || recs[0].(Event).Time != 1 || end2 == nil {
		t.Errorf("unknown record type: %v, %v, end %v", err, recs, end2)
	}
	// As are the trailing fields of an event with bits this reader does not know.
	_, recs, _, err = readRecords(strings.NewReader(head+ev(0x80, 0x80, 0x02, 1, 2, 0, 0, 0, 0, 0, 1, 7, 7, 7)), 100)
	if err != nil || len(recs) != 1 || recs[0].(Event).Pages != 1 {
		t.Errorf("unknown event fields: %v, %v", err, recs)
	}
}

// The binary trace says its losses in the header as the JSON Lines trace
// does, rewritten in place when tracing ends, and the rest reads back
// whole; where the file cannot be rewritten (a pipe), the end has them.
func TestLossesInHeaderBothForms(t *testing.T) {
	for _, f := range []Format{Binary, JSONL} {
		file, err := os.Create(filepath.Join(t.TempDir(), "t"))
		if err != nil {
			t.Fatal(err)
		}
		defer file.Close()
		writeRecords(t, file, f, Header{Kernel: "6.1.0", Batch: 64, PageSize: 4096}, []record{Event{Time: 1, Op: analysis.OpCharge, Pages: 1}},
			&End{Lost: 5, Missed: map[string]uint64{"refill_stock": 2, "drain_stock": 1}})
		file.Seek(0, 0)
		h, recs, end, err := readRecords(file, 10)
		if err != nil || h.Lost != 5 || h.MissedCalls != 3 || h.Kernel != "6.1.0" || len(recs) != 1 || end == nil || end.Lost != 5 {
			t.Errorf("%s: header %+v, %d records, end %+v, %v: want 5 lost and 3 missed calls", f, h, len(recs), end, err)
		}
		var pipe bytes.Buffer
		writeRecords(t, &pipe, f, Header{Batch: 64, PageSize: 4096}, nil, &End{Lost: 5})
		if h, _, end, err := readRecords(&pipe, 10); err != nil || h.Lost != 0 || end.Lost != 5 {
			t.Errorf("%s, not rewritable: header %+v, end %+v, %v", f, h, end, err)
		}
	}
}

// Whatever bytes a reader is given, it never panics nor allocates beyond
// its bounds, and what it decodes, written back, reads back the same and
// is written the same again: the encoding is a function of what it holds.
func FuzzBinaryReader(f *testing.F) {
	var buf bytes.Buffer
	ev := fullEvent()
	writeRecords(f, &buf, Binary, Header{Batch: 64, PageSize: 4096, Functions: map[string]string{"a": "b"}},
		[]record{UserStack{Type: "ustack", ID: 2, Frames: []UserFrame{{IP: 1}}}, ev, Event{Time: 9, Op: analysis.OpDrain, Comm: "x"}}, &End{Lost: 1})
	f.Add(buf.Bytes())
	if raw, err := os.ReadFile("../testdata/traces/bookworm-seed-charges-touch196.jsonl"); err == nil {
		h, recs, end, _ := readRecords(bytes.NewReader(raw), 40)
		buf.Reset()
		writeRecords(f, &buf, Binary, h, recs, end)
		f.Add(buf.Bytes())
	}
	f.Add(append(Magic[:], 1, 0, recHeader, 0x80, 0x80, 0x40))
	f.Add(append(Magic[:], 1, 0, recHeader, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20)) // 1 TiB: past the bound, refused before any allocation
	buf.Reset()
	writeRecords(f, &buf, Binary, Header{Batch: 64, PageSize: 4096}, nil, nil)
	f.Add(binary.AppendUvarint(append(buf.Bytes(), recEnd), 1<<40)) // a record claiming 1 TiB
	f.Fuzz(func(t *testing.T, b []byte) {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		h, recs, end, err := readRecords(bytes.NewReader(b), 1000)
		runtime.ReadMemStats(&m1)
		// The buffer, one JSON record at most, and what the input holds.
		if a := m1.TotalAlloc - m0.TotalAlloc; a > 4<<20+uint64(200*len(b)) {
			t.Fatalf("%d bytes allocated reading %d", a, len(b))
		}
		if err != nil {
			if bytes.HasPrefix(b, Magic[:]) && !strings.HasPrefix(err.Error(), "offset ") {
				t.Fatalf("an error that names no offset: %v", err)
			}
			return
		}
		var b1, b2 bytes.Buffer
		writeRecords(t, &b1, Binary, h, recs, end)
		h2, recs2, end2, err := readRecords(bytes.NewReader(b1.Bytes()), 1000)
		if err != nil {
			t.Fatalf("the writer's own output does not read back: %v", err)
		}
		h.Type, h.Schema = "header", Schema
		if end != nil {
			end.Type, end.Events = "end", 0
			for _, r := range recs {
				if _, ok := r.(Event); ok {
					end.Events++
				}
			}
		}
		if !sameJSON(h, h2) || !sameJSON(end, end2) {
			t.Fatalf("header or end read back otherwise:\n%+v %+v\n%+v %+v", h, end, h2, end2)
		}
		if i, ok := sameRecords(recs, recs2); !ok {
			t.Fatalf("record %d read back otherwise", i)
		}
		writeRecords(t, &b2, Binary, h2, recs2, end2)
		if !bytes.Equal(b1.Bytes(), b2.Bytes()) {
			t.Fatalf("written again, otherwise:\n% x\n% x", b1.Bytes(), b2.Bytes())
		}
	})
}

// Random events, written and read back, are the events written.
func FuzzBinaryRoundTrip(f *testing.F) {
	f.Add(uint64(1), int64(0), int64(7), int64(7), "a", uint8(1), "try_charge_memcg", "", uint64(1), uint64(0), uint64(0), uint16(0), uint32(0), "anon", "x", uint64(0), int64(-1), uint64(0), uint64(0), int64(0), uint64(0), uint64(0), uint64(2))
	f.Fuzz(func(t *testing.T, tm uint64, cpu, pid, tid int64, comm string, op uint8, fn, counter string, pages, usage, mark uint64, bools uint16, gfp uint32,
		kind, caller string, consumed uint64, from int64, cg, stocked uint64, real int64, us, ks uint64, dt uint64) {
		e := Event{Time: tm, CPU: int(cpu), PID: int(pid), TID: int(tid), Comm: comm, Op: analysis.Op(op%7 + 1), Fn: fn, Counter: counter, Pages: pages, Usage: usage,
			Watermark: mark, Forced: bools&1 != 0, Failed: bools&2 != 0, Gfp: gfp, Kind: kind, Caller: caller, Consumed: consumed, Cgroup: cg, Stocked: stocked, Real: real, UStack: us, KStack: ks}
		if bools&4 != 0 {
			fc := int(from)
			e.FromCPU = &fc
		}
		e2 := e
		e2.Time += dt
		e2.Comm, e2.Fn = caller, comm
		var buf bytes.Buffer
		w, err := NewWriter(&buf, Header{Batch: 64, PageSize: 4096})
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range []Event{e, e2, e} {
			if err := w.Write(x); err != nil {
				t.Fatal(err)
			}
		}
		w.Flush()
		rd, err := NewReader(&buf)
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range []Event{e, e2, e} {
			var got Event
			p := bytes.Clone(rd.bin.mustPeek(t))
			got, err = rd.Next()
			if check(&want) != nil {
				// The reader refuses what no kernel writes, naming it.
				if err == nil || !strings.HasPrefix(err.Error(), "offset ") {
					t.Fatalf("event %d %+v: read back with %v", i, want, err)
				}
				return
			}
			if err != nil || !sameEvent(got, want) {
				t.Fatalf("event %d %+v\nread back as %+v, %v (% x)", i, want, got, err, p)
			}
		}
	})
}

// mustPeek shows what is buffered, for a failure's message.
func (b *binReader) mustPeek(t *testing.T) []byte {
	p, _ := b.r.Peek(b.r.Buffered())
	return p
}
