package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/cgpeak/cgpeak/analysis"
	"github.com/cgpeak/cgpeak/internal/replay"
	"github.com/cgpeak/cgpeak/internal/runas"
	"github.com/cgpeak/cgpeak/internal/session"
	"github.com/cgpeak/cgpeak/loader"
	"github.com/cgpeak/cgpeak/trace"
)

type traceOpts struct {
	on        bool
	charges   bool // record every charge (per-charge mode), not the summary
	descend   bool // also the cgroups below the target (implies charges)
	output    string
	format    string // of the trace file: trace.Binary or trace.JSONL
	backend   string
	kernelBTF string
	timeline  bool
	plot      string
	as        *runas.Identity // who the command runs as (root's runs only); nil: as cgpeak
	// Test switches (hidden flags): summary mode probes every request even
	// where the stocks can be read; per-charge mode walks every stack.
	perRequest, walkEveryStack, noUserStacks bool
}

// TraceReport is the part of a run's report that comes from traced
// charges, and explain's whole report.
type TraceReport = replay.Report

func (o traceOpts) session(argv []string, attached bool) session.Options {
	return session.Options{Charges: o.charges, Descendants: o.descend, Output: o.output, Format: trace.Format(o.format), Backend: o.backend, KernelBTF: o.kernelBTF,
		Timeline: o.timeline || o.plot != "", Command: argv, Attached: attached, PerRequest: o.perRequest, WalkEveryStack: o.walkEveryStack, NoUserStacks: o.noUserStacks}
}

// formatFlag adds --trace-format.
func (o *traceOpts) formatFlag(fs *pflag.FlagSet) {
	fs.StringVar(&o.format, "trace-format", string(trace.Binary), "the trace file's form: binary (compact, keeps up with millions of charges a second) or jsonl (JSON Lines, one record a line, for grep and jq; cgpeak convert turns one into the other)")
}

func (o *traceOpts) checkFormat() error {
	if _, err := trace.ParseFormat(o.format); err != nil {
		return fmt.Errorf("--trace-format: %w", err)
	}
	return nil
}

// traceAdvice words a tracing error for the command line.
func traceAdvice(err error) error {
	switch {
	case errors.Is(err, loader.ErrNoBackend):
		return fmt.Errorf("charge tracing: %w: see cgpeak probe", err)
	case errors.Is(err, loader.ErrNoKernelBTF):
		return fmt.Errorf("charge tracing: %w: pass --kernel-btf FILE", err)
	case errors.Is(err, loader.ErrUnknownBackend):
		return fmt.Errorf("charge tracing: %w: use --backend %s", err, strings.Join(append([]string{loader.Auto}, loader.Backends()...), ", "))
	case errors.Is(err, session.ErrOutput):
		return fmt.Errorf("--trace-output: %w", err)
	}
	return fmt.Errorf("charge tracing: %w", err)
}

// testFlags adds the hidden switches the test suite compares modes with.
func (o *traceOpts) testFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.perRequest, "summary-per-request", false, "summary mode: probe every charge request even where the stocks can be read")
	fs.BoolVar(&o.walkEveryStack, "walk-every-stack", false, "per-charge mode: walk every request's kernel stack, not once per call path")
	fs.MarkHidden("summary-per-request")
	fs.MarkHidden("walk-every-stack")
	fs.BoolVar(&o.noUserStacks, "no-user-stacks", false, "per-charge mode: take no user stacks (to measure what they cost)")
	fs.MarkHidden("no-user-stacks")
}

// writeTraceReport prints a trace's report: a live one (run --trace,
// trace) as part of its run's report, a replayed one (explain) on its own,
// headed by the file it came from.
func writeTraceReport(w io.Writer, t *TraceReport) {
	live := t.Trace == ""
	if live {
		fmt.Fprintf(w, "  traced charges           %d events (%s backend, %s), %d lost\n", t.Events, t.Backend, modeLabel(t.Mode, t.StocksRead), t.Lost)
	} else {
		fmt.Fprintf(w, "trace %s: %d events, %s backend, %s, Linux %s, charge batch %d pages\n", t.Trace, t.Events, t.Backend, modeLabel(t.Mode, t.StocksRead), t.Kernel, t.BatchPages)
		if !t.Exact {
			fmt.Fprintf(w, "  INCOMPLETE: %s; the figures below are not exact\n", strings.Join(t.Incomplete, "; "))
		}
		if t.PeakBytes != nil {
			fmt.Fprintf(w, "  cgroup peak memory       %10s     (%s, read when the run ended)\n", human(*t.PeakBytes), t.PeakSource)
		}
		fmt.Fprintf(w, "  traced watermark         %10s     (page_counter.watermark in the trace)\n", human(t.WatermarkBytes))
	}
	corrected := human(t.CorrectedPeakBytes) + bound(t)
	if live {
		exact := ""
		if !t.Exact {
			exact = "; INCOMPLETE, not exact: " + strings.Join(t.Incomplete, "; ")
		}
		window := ""
		if t.Attached {
			window = " while traced"
		}
		fmt.Fprintf(w, "  corrected peak           %10s     (traced charges: max of counter usage minus per-CPU stock%s%s)\n", corrected, window, exact)
		fmt.Fprintf(w, "  traced watermark         %10s     (page_counter.watermark as the tracer read it)\n", human(t.WatermarkBytes))
	} else {
		fmt.Fprintf(w, "  corrected peak           %10s     (max of counter usage minus per-CPU stock, replayed)\n", corrected)
	}
	if c := t.Reconciliation; c != nil {
		var n uint64
		for _, v := range t.Missed {
			n += v
		}
		verdict := "none of them was this cgroup's (or they cancelled out): they cost the corrected peak nothing"
		if c.DriftPages != 0 {
			verdict = fmt.Sprintf("this cgroup's own skipped updates net %+d pages, the most the corrected peak can be off by", c.DriftPages)
		}
		fmt.Fprintf(w, "  skipped stat updates     %d (the kernel's recursion count, any cgroup's); memory.stat %d pages, traced sum %d: %s\n", n, c.StatPages, c.TracedPages, verdict)
	}
	fmt.Fprintf(w, "  explanation              %s\n", t.Explanation)
	if len(t.Kinds) > 0 {
		fmt.Fprintf(w, "  charged for              %s\n", kindsLine(t.Kinds, t.Backend == "tracepoint"))
	}
	if live {
		writeCharges(w, t.Totals, t.BatchPages)
	}
	writeTotals(w, t.PerCPU, t.PerProcess, t.Cgroups, t.StocksRead)
	if t.BackendNote != "" {
		fmt.Fprintf(w, "  backend                  %s\n", t.BackendNote)
	}
	if t.Mode == "summary" && !t.StocksRead && t.StocksNote != "" {
		fmt.Fprintf(w, "  summary mode probed every charge request: the per-CPU stocks could not be read (%s)\n", t.StocksNote)
	}
	for _, m := range t.Missing {
		fmt.Fprintf(w, "  not traced: %s\n", m)
	}
	if t.ProgramRuns > 0 {
		fmt.Fprintf(w, "  tracer cost              %d program runs, %.3f ms in the kernel (kernel.bpf_stats_enabled; probe entry and exit not included)\n", t.ProgramRuns, t.ProgramSeconds*1e3)
	}
	if t.Output != "" {
		fmt.Fprintf(w, "  trace written to         %s\n", t.Output)
	}
}

// modeLabel names a trace's mode, and how a summary followed the stocks.
func modeLabel(mode string, stocksRead bool) string {
	if stocksRead {
		return mode + " mode, stocks read from the kernel"
	}
	return mode + " mode"
}

// writeCharges prints the charge totals; a stock-read summary knows the
// requests the stocks served only as pages.
func writeCharges(w io.Writer, t analysis.Totals, batch uint64) {
	if t.Stats {
		fmt.Fprintf(w, "  stat updates             %d pages added to the charged statistics, %d taken out (tracepoint backend: no charge requests seen)\n", t.RequestedPages, t.UnchargedPages)
		return
	}
	if t.RequestsUncounted {
		fmt.Fprintf(w, "  charges                  %d pages requested, %d of them served from the per-CPU stock (summary mode counts those in pages, not requests), %d counter charges of up to %d pages, %d forced, %d refused\n",
			t.RequestedPages, t.FromStockPages, t.CounterCharges, batch, t.Forced, t.Failed)
		return
	}
	fmt.Fprintf(w, "  charges                  %d requests, %d served from the per-CPU stock, %d counter charges of up to %d pages, %d forced, %d refused\n",
		t.Requests, t.FromStock, t.CounterCharges, batch, t.Forced, t.Failed)
}

// bound is what follows a corrected peak that is not exact: where the real
// peak lies, and why (analysis.PeakRange); nothing where the trace is
// exact, and where what was lost or missed cannot have moved the peak
// (the kernel kept it), that it is exact all the same.
func bound(t *TraceReport) string {
	switch {
	case t.Exact || (t.CorrectedPeakErrorBytes == 0 && t.MissedCalls == 0):
		return ""
	case t.CorrectedPeakLowBytes == t.CorrectedPeakHighBytes:
		return fmt.Sprintf(" (exact all the same: the kernel kept what it is taken from, whatever the %d calls missed or lost)", t.MissedCalls)
	}
	return fmt.Sprintf(" (between %s and %s: %d calls missed)", human(t.CorrectedPeakLowBytes), human(t.CorrectedPeakHighBytes), t.MissedCalls)
}
