package stats

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"sort"

	"gonum.org/v1/gonum/stat/distuv"
)

// Comparison of two series a and b: how many times b's mean a's mean is,
// with a 95% interval, and whether the difference is significant.
type Comparison struct {
	Ratio float64 `json:"ratio"` // mean(a) / mean(b)
	// Low and High bound the ratio's 95% bootstrap percentile interval.
	Low  float64 `json:"ci95_low"`
	High float64 `json:"ci95_high"`
	// P is the two-sided p-value of Welch's t-test on the means (NaN when
	// either series has fewer than two values or neither varies).
	P float64 `json:"p_value"`
	// Significant: P < 0.05, or, when neither series varies at all, the
	// means differ.
	Significant bool `json:"significant"`
}

// Welch's unequal-variances t-test: t, the Welch-Satterthwaite degrees of
// freedom and the two-sided p-value. The Student t CDF comes from gonum: its
// incomplete beta function is the well-tested one.
func Welch(a, b []float64) (t, df, p float64) {
	sa, sb := Summarize(a), Summarize(b)
	if sa.N < 2 || sb.N < 2 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	va, vb := sa.Stddev*sa.Stddev/float64(sa.N), sb.Stddev*sb.Stddev/float64(sb.N)
	if va+vb == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	t = (sa.Mean - sb.Mean) / math.Sqrt(va+vb)
	df = (va + vb) * (va + vb) / (va*va/float64(sa.N-1) + vb*vb/float64(sb.N-1))
	p = 2 * distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.CDF(-math.Abs(t))
	return t, df, p
}

// bootstrapRounds resamples enough for the 2.5% and 97.5% percentiles to be
// stable to a few parts in a thousand.
const bootstrapRounds = 10000

// Compare compares series a with series b. The interval resamples both
// series with a fixed seed, so the same measurements always print the same
// interval.
func Compare(a, b []float64) Comparison {
	sa, sb := Summarize(a), Summarize(b)
	c := Comparison{Ratio: math.NaN(), Low: math.NaN(), High: math.NaN(), P: math.NaN()}
	if sa.N == 0 || sb.N == 0 || sb.Mean == 0 {
		return c
	}
	c.Ratio = sa.Mean / sb.Mean
	_, _, c.P = Welch(a, b)
	switch {
	case !math.IsNaN(c.P):
		c.Significant = c.P < 0.05
	case sa.N >= 2 && sb.N >= 2:
		// Neither series varies: any difference is real.
		c.Significant = sa.Mean != sb.Mean
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ratios := make([]float64, 0, bootstrapRounds)
	for i := 0; i < bootstrapRounds; i++ {
		ma, mb := resampleMean(rng, a), resampleMean(rng, b)
		if mb != 0 {
			ratios = append(ratios, ma/mb)
		}
	}
	if len(ratios) == 0 {
		return c
	}
	sort.Float64s(ratios)
	c.Low = ratios[int(0.025*float64(len(ratios)-1))]
	c.High = ratios[int(math.Ceil(0.975*float64(len(ratios)-1)))]
	return c
}

func resampleMean(rng *rand.Rand, xs []float64) float64 {
	var s float64
	for range xs {
		s += xs[rng.IntN(len(xs))]
	}
	return s / float64(len(xs))
}

// MarshalJSON writes figures that could not be computed (NaN) as null:
// JSON has no NaN.
func (c Comparison) MarshalJSON() ([]byte, error) {
	num := func(v float64) *float64 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return &v
	}
	return json.Marshal(struct {
		Ratio       *float64 `json:"ratio"`
		Low         *float64 `json:"ci95_low"`
		High        *float64 `json:"ci95_high"`
		P           *float64 `json:"p_value"`
		Significant bool     `json:"significant"`
	}{num(c.Ratio), num(c.Low), num(c.High), num(c.P), c.Significant})
}
