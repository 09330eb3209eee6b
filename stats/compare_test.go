package stats

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
)

// Welch's t on a pair small enough to work out by hand.
func TestWelchByHand(t *testing.T) {
	a := []float64{1, 2, 3, 4, 5}
	b := []float64{4, 5, 6, 7, 8}
	// Means 3 and 6, variances 2.5 each, n 5: se = sqrt(0.5+0.5) = 1, t = -3,
	// df = (1)^2 / (0.25/4 + 0.25/4) = 8.
	tt, df, p := Welch(a, b)
	if math.Abs(tt+3) > 1e-12 || math.Abs(df-8) > 1e-12 {
		t.Fatalf("t %v df %v, want -3 and 8", tt, df)
	}
	// Two-sided p of |t| = 3 with 8 degrees of freedom: 0.017072 (t tables).
	if math.Abs(p-0.017072) > 5e-6 {
		t.Errorf("p = %v, want 0.017072", p)
	}
}

// Over many pairs of samples from one distribution, the test calls about 5%
// of them significant; over pairs whose means differ by 3 sigma, nearly all.
func TestCompareCalibration(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	sample := func(mean float64) []float64 {
		xs := make([]float64, 12)
		for i := range xs {
			xs[i] = mean + rng.NormFloat64()
		}
		return xs
	}
	var same, diff int
	const trials = 400
	for i := 0; i < trials; i++ {
		if _, _, p := Welch(sample(10), sample(10)); p < 0.05 {
			same++
		}
		if _, _, p := Welch(sample(10), sample(13)); p < 0.05 {
			diff++
		}
	}
	if rate := float64(same) / trials; rate > 0.09 || rate < 0.02 {
		t.Errorf("false positive rate %.3f, want about 0.05", rate)
	}
	if diff < trials*95/100 {
		t.Errorf("only %d of %d clear differences found significant", diff, trials)
	}
}

// The interval holds the true ratio of means about 95% of the time.
func TestCompareIntervalCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	sample := func(mean float64) []float64 {
		xs := make([]float64, 20)
		for i := range xs {
			xs[i] = mean * (1 + 0.1*rng.NormFloat64())
		}
		return xs
	}
	covered := 0
	const trials = 100
	for i := 0; i < trials; i++ {
		c := Compare(sample(2), sample(1))
		if c.Low <= 2 && 2 <= c.High {
			covered++
		}
		if !(c.Low <= c.Ratio && c.Ratio <= c.High) {
			t.Fatalf("ratio %v outside its own interval [%v, %v]", c.Ratio, c.Low, c.High)
		}
	}
	if covered < trials*85/100 {
		t.Errorf("interval covered the true ratio in %d of %d trials, want about 95%%", covered, trials)
	}
}

func TestCompareConstantSeries(t *testing.T) {
	c := Compare([]float64{4096, 4096, 4096}, []float64{8192, 8192, 8192})
	if c.Ratio != 0.5 || !c.Significant || c.Low != 0.5 || c.High != 0.5 {
		t.Errorf("constant series: %+v", c)
	}
	if c := Compare([]float64{1, 1}, []float64{1, 1}); c.Significant {
		t.Errorf("identical constant series called significant: %+v", c)
	}
	if c := Compare([]float64{5}, []float64{1, 2}); c.Significant || !math.IsNaN(c.P) {
		t.Errorf("one run cannot be significant: %+v", c)
	}
}

func TestComparisonJSONHasNoNaN(t *testing.T) {
	b, err := json.Marshal(Compare([]float64{5}, []float64{1, 2}))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"ratio":3.3333333333333335,"ci95_low":2.5,"ci95_high":5,"p_value":null,"significant":false}` {
		t.Errorf("%s", b)
	}
}
