// Command gentrace writes a synthetic charge trace of a given length for the
// explain benchmark: two CPUs faulting single pages through batch-of-64
// stocks, with frees, as the kernel would record them.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"

	"github.com/cgpeak/cgpeak/analysis"
	"github.com/cgpeak/cgpeak/trace"
)

func main() {
	events := flag.Uint64("events", 10_000_000, "events to write")
	format := flag.String("format", string(trace.Binary), "the trace's form: binary or jsonl")
	flag.Parse()
	f, err := trace.ParseFormat(*format)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	w, err := trace.NewFormatWriter(out, trace.Header{Kernel: "synthetic", Batch: 64, BatchSource: "gentrace", CPUs: 2, PageSize: 4096,
		Backend: "fentry", Mode: "charges", Cgroup: "/synthetic", CgroupVersion: 2}, f)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var usage, mark, inUse uint64
	stock := [2]uint64{}
	t := uint64(0)
	emit := func(e trace.Event) {
		t += 1000
		e.Time, e.PID, e.TID, e.Comm = t, 42, 42+e.CPU, "bench"
		if err := w.Write(e); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	for i := uint64(0); w.Events() < *events; i++ {
		cpu := int(i>>10) & 1
		if inUse > 50_000 && i%3 == 0 { // free a few pages straight to the counter
			usage -= 8
			inUse -= 8
			emit(trace.Event{CPU: cpu, Op: analysis.OpCounterUncharge, Fn: "page_counter_uncharge", Counter: "memory", Pages: 8, Usage: usage, Watermark: mark})
			continue
		}
		if stock[cpu] == 0 {
			usage += 64
			mark = max(mark, usage)
			emit(trace.Event{CPU: cpu, Op: analysis.OpCounterCharge, Fn: "page_counter_try_charge", Counter: "memory", Pages: 64, Usage: usage, Watermark: mark})
			stock[cpu] = 63
			emit(trace.Event{CPU: cpu, Op: analysis.OpRefill, Fn: "refill_stock", Pages: 63})
		} else {
			stock[cpu]--
		}
		inUse++
		emit(trace.Event{CPU: cpu, Op: analysis.OpCharge, Fn: "try_charge_memcg", Pages: 1})
	}
	if err := w.Close(trace.End{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out.Flush()
}
