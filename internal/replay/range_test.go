package replay

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

const tpHeader = `{"type":"header","schema":2,"kernel":"6.13.0","batch_pages":64,"page_size":4096,"cpus":2,"backend":"tracepoint","mode":"summary","cgroup_version":1}`

// tpTrace is a tracepoint trace of 100 pages in real use at most (the
// kernel side's maximum), a watermark of 128, 25 updates skipped by the
// recursion guard and lost events as given, ending with the reconciliation
// rec (a JSON object, "" for none).
func tpTrace(lost int, rec string) string {
	end := fmt.Sprintf(`{"type":"end","events":2,"lost":%d,"missed":{"tp_lruvec_state":25},"summary":{"stats":true,"cpus":{"0":{"from_stock":0,"from_stock_pages":0,"pending":0,"max_real":100,"max_real_t":3,"watermark":128,"watermark_real":100,"watermark_t":3,"stat_added":100}}}`, lost)
	if rec != "" {
		end += `,"reconciliation":` + rec
	}
	return tpHeader + "\n" +
		`{"t":1,"cpu":0,"op":"stat_add","fn":"mod_memcg_lruvec_state","kind":"anon","pages":1,"usage":64,"watermark":64,"real":1}` + "\n" +
		`{"t":3,"cpu":0,"op":"stat_add","fn":"mod_memcg_lruvec_state","kind":"anon","pages":99,"usage":128,"watermark":128,"real":100}` + "\n" +
		end + "}\n"
}

func replayString(t *testing.T, tr string) *Report {
	t.Helper()
	r, _, err := Trace(strings.NewReader(tr), "t", false)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Skipped updates reconciled with the kernel's statistics: where memory.stat
// and the running sum agree, every skipped update was another cgroup's and
// the trace is exact; where the statistics hold 10 pages more, the sum
// missed additions of the cgroup's own, and the real peak lies in the 10
// pages above the kernel's maximum; where they hold 10 fewer, in the 10
// below. Without a reconciliation each of the 25 may have been the
// cgroup's, by a batch each.
func TestReconciliation(t *testing.T) {
	for _, c := range []struct {
		name, rec     string
		exact         bool
		low, high, pk uint64 // pages
	}{
		{"others", `{"memory_stat_pages":7,"traced_sum_pages":7,"quiet_seconds":2.5}`, true, 100, 100, 100},
		{"own additions", `{"memory_stat_pages":17,"traced_sum_pages":7,"quiet_seconds":2.5}`, false, 100, 110, 100},
		{"own removals", `{"memory_stat_pages":7,"traced_sum_pages":17,"quiet_seconds":2.5}`, false, 90, 100, 100},
		{"none", "", false, 0, 128, 100},
	} {
		r := replayString(t, tpTrace(0, c.rec))
		if r.Exact != c.exact || r.CorrectedPeakLowBytes != c.low*4096 || r.CorrectedPeakHighBytes != c.high*4096 || r.CorrectedPeakBytes != c.pk*4096 {
			t.Errorf("%s: exact %v (%v), corrected %d in [%d, %d] bytes; want exact %v, %d in [%d, %d] pages",
				c.name, r.Exact, r.Incomplete, r.CorrectedPeakBytes, r.CorrectedPeakLowBytes, r.CorrectedPeakHighBytes, c.exact, c.pk, c.low, c.high)
		}
		if want := max(c.high-c.pk, c.pk-c.low) * 4096; r.CorrectedPeakErrorBytes != want {
			t.Errorf("%s: error %d bytes, want %d", c.name, r.CorrectedPeakErrorBytes, want)
		}
		if c.rec != "" && (r.Reconciliation == nil || r.Reconciliation.DriftPages != int64(c.high-c.pk)-int64(c.pk-c.low)) {
			t.Errorf("%s: reconciliation %+v", c.name, r.Reconciliation)
		}
	}
}

// Where the kernel side kept the maximum itself, lost events cost nothing:
// a tracepoint trace and a per-request summary trace that lost 5000 events
// give the kernel's maximum, exactly; a per-charge and a stock-read trace,
// which keep none, give a range within [0, the watermark] (1 MiB), where
// they printed "± 3.74 GiB" before; all hold the peak the trace gives
// with nothing lost.
func TestLostEventsBoundedByWatermark(t *testing.T) {
	r := replayString(t, tpTrace(5000, `{"memory_stat_pages":7,"traced_sum_pages":7,"quiet_seconds":2.5}`))
	if r.CorrectedPeakErrorBytes != 0 || r.CorrectedPeakBytes != 100*4096 || r.Exact {
		t.Errorf("tracepoint, 5000 lost: corrected %d ± %d bytes, exact %v; want 409600 ± 0, not exact", r.CorrectedPeakBytes, r.CorrectedPeakErrorBytes, r.Exact)
	}
	for _, mode := range []string{"charges", "stocks", "summary"} {
		b, err := os.ReadFile("../../testdata/traces/bookworm-seed-" + mode + "-touch196.jsonl")
		if err != nil {
			t.Fatal(err)
		}
		tr := regexp.MustCompile(`("type":"end","events":\d+,"lost":)0`).ReplaceAllString(string(b), "${1}5000")
		r := replayString(t, tr)
		if r.Lost != 5000 {
			t.Fatalf("%s: %d lost", mode, r.Lost)
		}
		w := r.WatermarkBytes
		if r.CorrectedPeakErrorBytes > w || r.CorrectedPeakHighBytes > w || r.CorrectedPeakLowBytes > r.CorrectedPeakBytes || r.CorrectedPeakBytes > r.CorrectedPeakHighBytes {
			t.Errorf("%s: corrected %d in [%d, %d] ± %d bytes, watermark %d", mode, r.CorrectedPeakBytes, r.CorrectedPeakLowBytes, r.CorrectedPeakHighBytes, r.CorrectedPeakErrorBytes, w)
		}
		// The same trace with nothing lost is exact: its corrected peak is
		// the truth the range must hold.
		if truth := replayString(t, string(b)).CorrectedPeakBytes; r.CorrectedPeakLowBytes > truth || r.CorrectedPeakHighBytes < truth {
			t.Errorf("%s: range [%d, %d] misses the exact trace's peak %d", mode, r.CorrectedPeakLowBytes, r.CorrectedPeakHighBytes, truth)
		}
		// Every real use a stock-read trace's kernel side measured was
		// real then, whatever was lost: the most of them (198 pages) is
		// the range's floor.
		if mode == "stocks" && r.CorrectedPeakLowBytes != 198*4096 {
			t.Errorf("stocks: range from %d bytes, want the kernel's largest measured real use, 198 pages", r.CorrectedPeakLowBytes)
		}
		if kept := mode == "summary"; kept != (r.CorrectedPeakErrorBytes == 0) {
			t.Errorf("%s: error %d bytes with 5000 lost: the kernel keeps the maximum only in per-request summaries", mode, r.CorrectedPeakErrorBytes)
		}
	}

	// A refill's event lost from a per-request summary leaves the replay
	// 63 pages short of stock, which it would count as real use: the range
	// is the kernel's maximum, which no lost event touched.
	b, err := os.ReadFile("../../testdata/traces/bookworm-seed-summary-touch196.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	if !strings.Contains(lines[11], `"op":"refill_stock"`) {
		t.Fatalf("line 12 is no refill: %s", lines[11])
	}
	tr := strings.Replace(strings.Join(append(lines[:11:11], lines[12:]...), "\n"), `"lost":0`, `"lost":1`, 1)
	exact := replayString(t, string(b))
	r = replayString(t, tr)
	if r.CorrectedPeakBytes != exact.CorrectedPeakBytes || r.CorrectedPeakErrorBytes != 0 {
		t.Errorf("summary, a refill lost: corrected %d ± %d bytes, want the kernel's %d ± 0", r.CorrectedPeakBytes, r.CorrectedPeakErrorBytes, exact.CorrectedPeakBytes)
	}
}
