package trace

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cgpeak/cgpeak/analysis"
)

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	one := 1
	w, err := NewWriter(&buf, Header{Kernel: "6.1.0", Batch: 64, PageSize: 4096, Backend: "fentry", Mode: "charges"})
	if err != nil {
		t.Fatal(err)
	}
	in := []Event{
		{Time: 1, CPU: 0, PID: 7, TID: 7, Comm: "a", Op: analysis.OpCounterCharge, Fn: "page_counter_try_charge", Counter: "memory", Pages: 64, Usage: 64, Watermark: 64},
		{Time: 2, CPU: 0, PID: 7, TID: 7, Comm: "a", Op: analysis.OpRefill, Fn: "refill_stock", Pages: 63},
		{Time: 3, CPU: 0, PID: 7, TID: 7, Comm: "a", Op: analysis.OpCharge, Fn: "try_charge_memcg", Pages: 1, FromCPU: &one},
		{Time: 4, CPU: 1, PID: 7, TID: 8, Comm: "a", Op: analysis.OpCounterCharge, Fn: "page_counter_try_charge", Counter: "memsw", Pages: 64, Usage: 64, Watermark: 64},
	}
	for _, e := range in {
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	peak := uint64(262144)
	if err := w.Close(End{Lost: 2, PeakBytes: &peak, PeakSource: "memory.peak"}); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if r.Header.Schema != Schema || r.Header.Batch != 64 {
		t.Errorf("header %+v", r.Header)
	}
	var out []Event
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if len(out) != len(in) || !sameEvent(out[0], in[0]) || !sameEvent(out[2], in[2]) || !sameEvent(out[3], in[3]) {
		t.Errorf("events differ: %+v", out)
	}
	if r.End == nil || r.End.Events != 4 || r.End.Lost != 2 || *r.End.PeakBytes != peak {
		t.Errorf("end %+v", r.End)
	}
	if !out[3].OtherCounter() {
		t.Error("a memsw event is taken for one of memory")
	}
	if ev := out[0]; ev.OtherCounter() || ev.Op != analysis.OpCounterCharge || ev.Usage != 64 {
		t.Errorf("event %+v", ev)
	}
}

// A malformed trace fails with the number of the bad line.
func TestMalformed(t *testing.T) {
	head := `{"type":"header","schema":1,"batch_pages":64,"page_size":4096}` + "\n"
	for _, c := range []struct{ trace, want string }{
		{"", "line 1: empty trace"},
		{"{not json\n", "line 1: not a cgpeak trace header"},
		{`{"type":"header","schema":99,"batch_pages":64,"page_size":4096}` + "\n", "newer than"},
		{`{"type":"header","schema":1}` + "\n", "lacks batch_pages"},
		{head + `{"t":1,"op":"charge","pages":1}` + "\n{oops\n", "line 3:"},
		{head + `{"t":1,"op":"teleport","pages":1}` + "\n", `line 2: unknown op "teleport"`},
		{head + `{"type":"end","events":0}` + "\n" + `{"t":1,"op":"charge"}` + "\n", "line 3: data after the end line"},
	} {
		r, err := NewReader(strings.NewReader(c.trace))
		for err == nil {
			_, err = r.Next()
		}
		if err == io.EOF || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.trace, err, c.want)
		}
	}
}

// Whatever the reader accepts, written back by the writer in either form,
// reads back the same: header, every event and the end (a round trip
// through the format), and the reader stops at the first error with the
// line (or byte offset) it names.
func FuzzReaderRoundTrip(f *testing.F) {
	f.Add(`{"type":"header","schema":1,"batch_pages":64,"page_size":4096}` + "\n" + `{"t":1,"op":"charge","pages":1}` + "\n")
	f.Add(`{"type":"header","schema":1,"batch_pages":64,"page_size":4096,"functions":{"a":"b"},"command":["x"]}` + "\n" +
		`{"t":1,"cpu":2,"pid":3,"tid":4,"comm":"a\"b","op":"counter_charge","fn":"f","counter":"memsw","pages":64,"usage":64,"watermark":64,"forced":true}` + "\n" +
		`{"type":"end","events":1,"lost":2,"missed":{"refill_stock":1},"cgroup_peak_bytes":262144,"cgroup_peak_source":"memory.peak"}` + "\n")
	if traces, _ := filepath.Glob("../testdata/traces/*seed-s*.jsonl"); len(traces) > 0 {
		for _, tf := range traces {
			if b, err := os.ReadFile(tf); err == nil {
				f.Add(string(b))
			}
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, events, end, err := readAll(strings.NewReader(s))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "line ") && !strings.HasPrefix(err.Error(), "offset ") {
				t.Fatalf("an error that names no line or offset: %v", err)
			}
			return
		}
		h.Type, h.Schema = "header", Schema
		if end != nil {
			end.Type, end.Events = "end", uint64(len(events))
		}
		for _, f := range []Format{Binary, JSONL} {
			var buf bytes.Buffer
			w, err := NewFormatWriter(&buf, h, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range events {
				if err := w.Write(e); err != nil {
					t.Fatal(err)
				}
			}
			if end != nil {
				err = w.Close(*end)
			} else {
				err = w.Flush()
			}
			if err != nil {
				t.Fatal(err)
			}
			h2, events2, end2, err := readAll(&buf)
			if err != nil {
				t.Fatalf("%s: the writer's own output does not read back: %v\n%s", f, err, buf.String())
			}
			if !sameJSON(h, h2) {
				t.Fatalf("%s: header %+v read back as %+v", f, h, h2)
			}
			if len(events) != len(events2) {
				t.Fatalf("%s: %d events read back as %d", f, len(events), len(events2))
			}
			for i := range events {
				if !sameEvent(events[i], events2[i]) {
					t.Fatalf("%s: event %d %+v read back as %+v", f, i, events[i], events2[i])
				}
			}
			if !sameJSON(end, end2) {
				t.Fatalf("%s: end %+v read back as %+v", f, end, end2)
			}
		}
	})
}

// sameJSON compares headers or ends as a trace holds them: an empty list
// or map is written as none.
func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// readAll reads a whole trace.
func readAll(r io.Reader) (Header, []Event, *End, error) {
	h, recs, end, err := readRecords(r, 100000)
	var events []Event
	for _, r := range recs {
		if e, ok := r.(Event); ok {
			events = append(events, e)
		}
	}
	return h, events, end, err
}

// The stack and process tables of schema 2 come back with the events that
// name them, and each line kind is kept apart from the events.
func TestStackTablesRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{Kernel: "6.1.0", Batch: 64, PageSize: 4096, Backend: "fentry", Mode: "charges"})
	if err != nil {
		t.Fatal(err)
	}
	proc := Process{PID: 7, Comm: "a", Mappings: []Mapping{{Start: 0x401000, End: 0x402000, Offset: 0x1000, Path: "/bin/a", BuildID: "abcd"}}}
	if err := w.WriteProcess(proc); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteUserStack(UserStack{ID: 3, Frames: []UserFrame{{IP: 0x401010}, {BuildID: "abcd", Offset: 0x1200}}, Truncated: true}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteKernelStack(KernelStack{ID: 1 << 63, Frames: []string{"try_charge_memcg", "do_anonymous_page"}}); err != nil {
		t.Fatal(err)
	}
	ev := Event{Time: 3, PID: 7, TID: 7, Comm: "a", Op: analysis.OpCharge, Fn: "try_charge_memcg", Pages: 1, Kind: "anon", UStack: 3, KStack: 1 << 63}
	if err := w.Write(ev); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(End{UserStacks: &StackCounts{Walked: 1, Truncated: 1, Processes: 1}}); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Next()
	if err != nil || got != ev {
		t.Fatalf("event %+v, %v; want %+v", got, err, ev)
	}
	p := r.Processes[7]
	if p == nil || len(p.Mappings) != 1 || p.Mappings[0] != proc.Mappings[0] {
		t.Errorf("process %+v", p)
	}
	if r.Paths["abcd"] != "/bin/a" {
		t.Errorf("paths by build ID %v", r.Paths)
	}
	if m, ok := p.Find(0x401fff); !ok || m.Path != "/bin/a" {
		t.Errorf("Find(0x401fff) = %+v, %v", m, ok)
	}
	if _, ok := p.Find(0x402000); ok {
		t.Error("Find(0x402000) found a mapping ending there")
	}
	if s := r.UStacks[3]; len(s.Frames) != 2 || s.Frames[0].IP != 0x401010 || s.Frames[1] != (UserFrame{BuildID: "abcd", Offset: 0x1200}) || !s.Truncated {
		t.Errorf("ustack %+v", s)
	}
	if s := r.KStacks[1<<63]; len(s.Frames) != 2 || s.Frames[1] != "do_anonymous_page" {
		t.Errorf("kstack %+v", s)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after the event: %v", err)
	}
	if r.End == nil || r.End.Events != 1 || r.End.UserStacks == nil || r.End.UserStacks.Truncated != 1 {
		t.Errorf("end %+v", r.End)
	}
}
