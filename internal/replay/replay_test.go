package replay

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testHeader = `{"type":"header","schema":1,"kernel":"6.1.0","batch_pages":64,"page_size":4096,"backend":"fentry","mode":"charges"}`

// memory.peak read above the traced watermark (pages charged before an
// attached trace began) is explained with the surplus added, not taken away.
func TestExplainResidualSign(t *testing.T) {
	// A batch of 64 charged, 60 stocked, 4 used: watermark 64 pages. The
	// cgroup file read 74 pages: 10 the trace never saw.
	tr := testHeader + "\n" +
		`{"t":1,"cpu":0,"pid":1,"tid":1,"comm":"a","op":"counter_charge","fn":"page_counter_try_charge","counter":"memory","pages":64,"usage":64,"watermark":64}` + "\n" +
		`{"t":2,"cpu":0,"pid":1,"tid":1,"comm":"a","op":"refill_stock","fn":"refill_stock","pages":60}` + "\n" +
		`{"t":3,"cpu":0,"pid":1,"tid":1,"comm":"a","op":"charge","fn":"try_charge_memcg","pages":4}` + "\n" +
		`{"type":"end","events":3,"lost":0,"cgroup_peak_bytes":303104,"cgroup_peak_source":"memory.peak"}` + "\n"
	ex, _, err := Trace(strings.NewReader(tr), "residual", false)
	if err != nil {
		t.Fatal(err)
	}
	b := ex.Breakdown
	if b.PeakPages != 74 || b.InUse != 4 || b.Stocked != 60 || b.Unaccounted != 10 {
		t.Errorf("breakdown %+v, want 74 = 4 + 60 + 10", b)
	}
	if want := "= 4 pages in use + 60 pages pre-charged in CPU 0's stock (1 batch of 64) + 10 pages the trace does not account for"; !strings.Contains(ex.Explanation, want) {
		t.Errorf("explanation %q, want it to say %q", ex.Explanation, want)
	}
}

// Whatever trace explain accepts, its report holds together: the peak is
// the pages in use plus the stocks plus the residual, the corrected peak
// does not exceed the watermark, and no figure but the signed residual is
// negative.
func FuzzExplainInvariants(f *testing.F) {
	traces, _ := filepath.Glob("../../testdata/traces/*seed-s*.jsonl") // the small ones: summary and stocks
	for _, tf := range traces {
		if b, err := os.ReadFile(tf); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(testHeader + "\n" + `{"t":2,"cpu":0,"op":"counter_uncharge","pages":1,"usage":5000}` + "\n"))
	f.Add([]byte(strings.Replace(testHeader, `"mode":"charges"`, `"mode":"summary","stocks_read":true`, 1) + "\n" + `{"t":2,"cpu":1,"op":"refill_stock","pages":3,"usage":9,"stocked":3,"real":70}` + "\n"))
	f.Add([]byte(tpTrace(5000, `{"memory_stat_pages":17,"traced_sum_pages":7,"quiet_seconds":2.5}`)))
	f.Add([]byte(tpTrace(0, "")))
	f.Fuzz(func(t *testing.T, b []byte) {
		ex, _, err := Trace(bytes.NewReader(b), "fuzz", false)
		if err != nil {
			return
		}
		d := ex.Breakdown
		if int64(d.PeakPages) != int64(d.InUse)+int64(d.Stocked)+d.Unaccounted {
			t.Fatalf("peak %d != in use %d + stocked %d + residual %d", d.PeakPages, d.InUse, d.Stocked, d.Unaccounted)
		}
		if ex.CorrectedPeakBytes > ex.WatermarkBytes {
			t.Fatalf("corrected peak %d above the watermark %d", ex.CorrectedPeakBytes, ex.WatermarkBytes)
		}
		// The range: inside [0, the counter's maximum], around the
		// corrected peak, its error the farther end.
		ceiling := ex.WatermarkBytes
		if ex.PeakBytes != nil && !ex.Attached {
			ceiling = max(ceiling, *ex.PeakBytes/ex.PageSize*ex.PageSize)
		}
		lo, hi, c := ex.CorrectedPeakLowBytes, ex.CorrectedPeakHighBytes, ex.CorrectedPeakBytes
		if lo > c || c > hi || hi > ceiling || ex.CorrectedPeakErrorBytes != max(c-lo, hi-c) {
			t.Fatalf("corrected peak %d in [%d, %d] ± %d, ceiling %d", c, lo, hi, ex.CorrectedPeakErrorBytes, ceiling)
		}
		if c > ex.WatermarkBytes {
			t.Fatalf("corrected peak %d above the traced watermark %d", c, ex.WatermarkBytes)
		}
		if ex.Exact && (lo != c || hi != c) {
			t.Fatalf("exact, yet corrected peak %d in [%d, %d]", c, lo, hi)
		}
		if ex.WatermarkBytes%ex.PageSize != 0 || ex.CorrectedPeakBytes%ex.PageSize != 0 {
			t.Fatalf("byte figures not whole pages: %d, %d", ex.WatermarkBytes, ex.CorrectedPeakBytes)
		}
		js, err := json.Marshal(ex)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		d2 := json.NewDecoder(bytes.NewReader(js))
		d2.UseNumber()
		if err := d2.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if k, n := negativeFigure("", v); k != "" {
			t.Fatalf("negative figure %s %s in %s", k, n, js)
		}
	})
}

// negativeFigure finds a negative number in a decoded JSON report, but the
// signed residual.
func negativeFigure(key string, v any) (string, string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k, n := negativeFigure(k, e); k != "" {
				return k, n
			}
		}
	case []any:
		for _, e := range x {
			if k, n := negativeFigure(key, e); k != "" {
				return k, n
			}
		}
	case json.Number:
		if strings.HasPrefix(string(x), "-") && key != "unaccounted_pages" && key != "drift_pages" && key != "traced_sum_pages" {
			return key, string(x)
		}
	}
	return "", ""
}
