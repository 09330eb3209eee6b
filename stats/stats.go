// Package stats summarises repeated measurements: centre, spread, outliers,
// and the ratio of two series with its uncertainty.
package stats

import (
	"math"
	"sort"
)

// Summary of a series.
type Summary struct {
	N      int     `json:"n"`
	Mean   float64 `json:"mean"`
	Stddev float64 `json:"stddev"` // sample standard deviation (n-1); 0 for one value
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// Summarize computes the summary of xs; the zero Summary for none.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := Summary{N: len(xs), Min: math.Inf(1), Max: math.Inf(-1)}
	var sum float64
	for _, x := range xs {
		sum += x
		s.Min = math.Min(s.Min, x)
		s.Max = math.Max(s.Max, x)
	}
	s.Mean = sum / float64(len(xs))
	if len(xs) > 1 {
		var sq float64
		for _, x := range xs {
			sq += (x - s.Mean) * (x - s.Mean)
		}
		s.Stddev = math.Sqrt(sq / float64(len(xs)-1))
	}
	s.Median = median(xs)
	return s
}

func median(xs []float64) float64 {
	c := append([]float64(nil), xs...)
	sort.Float64s(c)
	n := len(c)
	if n%2 == 1 {
		return c[n/2]
	}
	return (c[n/2-1] + c[n/2]) / 2
}

// CV is the coefficient of variation, stddev / mean (0 when the mean is 0).
func (s Summary) CV() float64 {
	if s.Mean == 0 {
		return 0
	}
	return s.Stddev / s.Mean
}

// Outliers lists the indices of values whose modified z-score (Iglewicz and
// Hoaglin: 0.6745 (x - median) / MAD) exceeds 3.5. Robust to the outliers
// themselves, unlike a test on the mean and standard deviation.
func Outliers(xs []float64) []int {
	if len(xs) < 3 {
		return nil
	}
	m := median(xs)
	dev := make([]float64, len(xs))
	for i, x := range xs {
		dev[i] = math.Abs(x - m)
	}
	mad := median(dev)
	var out []int
	for i, d := range dev {
		if mad == 0 {
			if d > 0 && d > 0.05*math.Abs(m) { // all but a few identical: those few stand out
				out = append(out, i)
			}
			continue
		}
		if 0.6745*d/mad > 3.5 {
			out = append(out, i)
		}
	}
	return out
}

// Ratio is a / b of two series' means with its standard deviation by
// first-order propagation of both series' standard deviations.
func Ratio(a, b Summary) (ratio, stddev float64) {
	if b.Mean == 0 || a.Mean == 0 {
		return math.NaN(), math.NaN()
	}
	ratio = a.Mean / b.Mean
	stddev = ratio * math.Sqrt(math.Pow(a.Stddev/a.Mean, 2)+math.Pow(b.Stddev/b.Mean, 2))
	return ratio, stddev
}
