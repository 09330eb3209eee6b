package stats

import (
	"math"
	"reflect"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// Known series with their figures worked out by hand.
func TestSummarize(t *testing.T) {
	s := Summarize([]float64{2, 4, 4, 4, 5, 5, 7, 9})
	// mean 5, squared deviations sum 32, sample variance 32/7
	if s.N != 8 || !near(s.Mean, 5) || !near(s.Stddev, math.Sqrt(32.0/7)) || !near(s.Median, 4.5) || s.Min != 2 || s.Max != 9 {
		t.Errorf("%+v", s)
	}
	if s := Summarize([]float64{3, 1, 2}); !near(s.Median, 2) || !near(s.Mean, 2) || !near(s.Stddev, 1) {
		t.Errorf("%+v", s)
	}
	if s := Summarize([]float64{7}); s.Stddev != 0 || s.Median != 7 || s.Min != 7 {
		t.Errorf("one value: %+v", s)
	}
	if s := Summarize(nil); s != (Summary{}) {
		t.Errorf("none: %+v", s)
	}
	if cv := Summarize([]float64{9, 11}).CV(); !near(cv, math.Sqrt2/10) {
		t.Errorf("cv %v", cv)
	}
}

func TestOutliers(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		want []int
	}{
		{[]float64{1.00, 1.02, 0.98, 1.01, 0.99, 3.5}, []int{5}},
		{[]float64{1.00, 1.02, 0.98, 1.01, 0.99, 1.03}, nil},
		{[]float64{0.1, 5, 5.1, 4.9, 5, 5.05}, []int{0}},
		{[]float64{2, 2, 2, 2, 9}, []int{4}}, // MAD 0
		{[]float64{1, 50}, nil},              // too few to say
	} {
		if got := Outliers(c.xs); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v: %v, want %v", c.xs, got, c.want)
		}
	}
}

func TestRatio(t *testing.T) {
	a := Summary{Mean: 2, Stddev: 0.2}
	b := Summary{Mean: 1, Stddev: 0.1}
	r, sd := Ratio(a, b)
	// 10% relative error on each: sqrt(0.01+0.01) = 14.14% of 2
	if !near(r, 2) || !near(sd, 2*math.Sqrt(0.02)) {
		t.Errorf("ratio %v ± %v", r, sd)
	}
	if r, _ := Ratio(a, Summary{}); !math.IsNaN(r) {
		t.Errorf("ratio over zero: %v", r)
	}
}

func FuzzSummarize(f *testing.F) {
	f.Add(1.0, 2.0, 3.0)
	f.Fuzz(func(t *testing.T, a, b, c float64) {
		for _, x := range []float64{a, b, c} {
			if math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) > 1e150 {
				return
			}
		}
		s := Summarize([]float64{a, b, c})
		if s.Min > s.Median || s.Median > s.Max || s.Mean < s.Min-1e-9*math.Abs(s.Min) || s.Mean > s.Max+1e-9*math.Abs(s.Max) || s.Stddev < 0 {
			t.Errorf("%v %v %v: %+v", a, b, c, s)
		}
	})
}
