package trace

import (
	"bytes"
	"io"
	"testing"

	"github.com/cgpeak/cgpeak/analysis"
)

// benchEvents are per-charge mode's usual events: requests with their
// kind, caller and stacks, and the counter charges and refills between.
func benchEvents() []Event {
	var evs []Event
	t := uint64(11148427553)
	for i := 0; i < 4096; i++ {
		t += 700 + uint64(i%5)*100
		cpu := i >> 6 & 15
		switch {
		case i%64 == 0:
			evs = append(evs, Event{Time: t, CPU: cpu, PID: 4242, TID: 4242 + cpu, Comm: "worker", Op: analysis.OpCounterCharge, Fn: "page_counter_try_charge", Counter: "memory", Pages: 64, Usage: uint64(100000 + i), Watermark: uint64(100000 + i)})
		case i%64 == 1:
			evs = append(evs, Event{Time: t, CPU: cpu, PID: 4242, TID: 4242 + cpu, Comm: "worker", Op: analysis.OpRefill, Fn: "refill_stock", Pages: 63})
		default:
			evs = append(evs, Event{Time: t, CPU: cpu, PID: 4242, TID: 4242 + cpu, Comm: "worker", Op: analysis.OpCharge, Fn: "try_charge_memcg", Pages: 1, Gfp: 0xcc0,
				Kind: "anon", Caller: "do_anonymous_page", UStack: uint64(i%37 + 1), KStack: uint64(i%5 + 1)})
		}
	}
	return evs
}

// BenchmarkWriteEvents: events a second one core writes (per-charge mode
// at 16 CPUs makes about 2 million a second).
func BenchmarkWriteEvents(b *testing.B) {
	for _, f := range []Format{Binary, JSONL} {
		b.Run(string(f), func(b *testing.B) {
			evs := benchEvents()
			w, err := NewFormatWriter(io.Discard, Header{Batch: 64, PageSize: 4096}, f)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := w.Write(evs[i%len(evs)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkReadEvents: events a second one core reads back.
func BenchmarkReadEvents(b *testing.B) {
	for _, f := range []Format{Binary, JSONL} {
		b.Run(string(f), func(b *testing.B) {
			evs := benchEvents()
			var buf bytes.Buffer
			w, err := NewFormatWriter(&buf, Header{Batch: 64, PageSize: 4096}, f)
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; i < 64; i++ {
				for _, e := range evs {
					w.Write(e)
				}
			}
			w.Close(End{})
			n := 64 * len(evs)
			b.SetBytes(int64(buf.Len() / n))
			b.ReportAllocs()
			b.ResetTimer()
			var rd *Reader
			for i := 0; i < b.N; i++ {
				if i%n == 0 {
					if rd, err = NewReader(bytes.NewReader(buf.Bytes())); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := rd.Next(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
