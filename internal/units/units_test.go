package units

import "testing"

func TestPickAndFormat(t *testing.T) {
	for _, c := range []struct {
		mean, sd float64
		want     string
	}{
		{0.00071234, 0.00005, "712 µs"},     // sd 50 µs: 2 significant digits -> 0 decimals
		{0.00071234, 0.000001, "712.3 µs"},  // sd 1 µs -> 1 decimal... 2 sig digits of 1.0
		{0.0123456, 0.0003, "12.35 ms"},     // sd 0.30 ms -> 2 decimals
		{2.5, 0.25, "2.50 s"},               // sd 0.25 s -> 2 decimals
		{2.5, 0, "2.5 s"},                   // no spread: 1 decimal
		{125.3, 12, "125 s"},                // sd 12 s -> 0 decimals
		{0.0000004, 0.00000001, "0.400 µs"}, // capped at 3 decimals
	} {
		u := PickTimeUnit(c.mean)
		if got := Times(c.mean, u, Decimals(c.sd/u.Scale)); got != c.want {
			t.Errorf("mean %v sd %v: %q, want %q", c.mean, c.sd, got, c.want)
		}
	}
	for v, want := range map[float64]string{0.000712345: "712 µs", 0.0123456: "12.3 ms", 2.3456: "2.35 s", 0: "0 s", 250: "250 s"} {
		if got := Seconds(v); got != want {
			t.Errorf("Seconds(%v) = %q, want %q", v, got, want)
		}
	}
	for _, s := range []string{"microsecond", "ms", "SECOND"} {
		if _, err := ParseTimeUnit(s); err != nil {
			t.Error(err)
		}
	}
	if _, err := ParseTimeUnit("minute"); err == nil {
		t.Error("minute accepted")
	}
}
