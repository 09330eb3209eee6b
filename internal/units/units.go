// Package units prints times and sizes in units that fit them, with as many
// digits as the spread of a series makes meaningful.
package units

import (
	"fmt"
	"math"
	"strings"
)

// TimeUnit is a unit for printing durations given in seconds.
type TimeUnit struct {
	Name  string  // as printed: "µs", "ms", "s"
	Scale float64 // seconds per unit
}

var (
	Microsecond = TimeUnit{"µs", 1e-6}
	Millisecond = TimeUnit{"ms", 1e-3}
	Second      = TimeUnit{"s", 1}
)

// ParseTimeUnit reads --time-unit's value (hyperfine's names, and the
// symbols).
func ParseTimeUnit(s string) (TimeUnit, error) {
	switch strings.ToLower(s) {
	case "microsecond", "us", "µs":
		return Microsecond, nil
	case "millisecond", "ms":
		return Millisecond, nil
	case "second", "s":
		return Second, nil
	}
	return TimeUnit{}, fmt.Errorf("time unit %q: use microsecond, millisecond or second", s)
}

// PickTimeUnit is the unit in which the value (seconds) reads as 1 to 999;
// seconds for zero.
func PickTimeUnit(seconds float64) TimeUnit {
	switch a := math.Abs(seconds); {
	case a == 0:
		return Second
	case a < 1e-3:
		return Microsecond
	case a < 1:
		return Millisecond
	}
	return Second
}

// Decimals is how many digits after the point show a value whose
// uncertainty is spread (both in the unit printed): two significant digits of
// the spread, at most 3 and never fewer than 0; 1 when there is no spread.
func Decimals(spread float64) int {
	if spread <= 0 || math.IsNaN(spread) || math.IsInf(spread, 0) {
		return 1
	}
	d := 1 - int(math.Floor(math.Log10(spread)))
	return max(0, min(3, d))
}

// Times formats seconds in unit u with d decimals, e.g. "12.34 ms".
func Times(seconds float64, u TimeUnit, d int) string {
	return fmt.Sprintf("%.*f %s", d, seconds/u.Scale, u.Name)
}

// Seconds formats one measurement with three significant digits in the unit
// that fits it: "712 µs", "12.3 ms", "2.35 s".
func Seconds(seconds float64) string {
	if seconds == 0 {
		return "0 s" // not "0.00 s", as if it were measured to 10 ms
	}
	u := PickTimeUnit(seconds)
	v := math.Abs(seconds / u.Scale)
	d := 2
	switch {
	case v >= 100:
		d = 0
	case v >= 10:
		d = 1
	}
	return Times(seconds, u, d)
}
