package kernel

import "testing"

func TestChargeBatch(t *testing.T) {
	for rel, want := range map[string]uint64{
		"5.10.0-35-cloud-amd64": 32, "6.0.19": 32, "6.1.0-37-cloud-amd64": 64, "6.12.48+deb13-amd64": 64,
		"7.3.1+deb13-cloud-amd64": 64, "10.0": 64, "garbage": 64,
	} {
		if got := ChargeBatch(rel); got.Pages != want || got.Source == "" {
			t.Errorf("%s: %+v, want %d pages", rel, got, want)
		}
	}
}

func TestParse(t *testing.T) {
	for rel, want := range map[string]Version{"6.1.0-37-cloud-amd64": {6, 1}, "5.19": {5, 19}, "7.3rc1": {7, 3}} {
		if v, ok := Parse(rel); !ok || v != want {
			t.Errorf("%s: %v %v, want %v", rel, v, ok, want)
		}
	}
	for _, rel := range []string{"", "6", "x.y", "6.x"} {
		if _, ok := Parse(rel); ok {
			t.Errorf("%q parsed", rel)
		}
	}
	if !AtLeast("6.12.3-foo", 6, 12) || AtLeast("6.11.9", 6, 12) || !AtLeast("7.0", 6, 12) || AtLeast("", 5, 0) {
		t.Error("AtLeast")
	}
}

// Each feature from the release that brought it, as uname -r spells them;
// an unreadable release has none.
func TestSince(t *testing.T) {
	for _, c := range []struct {
		rel  string
		f    Version
		want bool
	}{
		{"5.18.19", PeakFile, false}, {"5.19.0-1-amd64", PeakFile, true},
		{"5.10.0-35-cloud-amd64", StatExact, false}, {"5.13", StatExact, true},
		{"6.10.14", MemcgV1Optional, false}, {"6.12.48+deb13-amd64", MemcgV1Optional, true},
		{"6.6.30", KprobeMissed, false}, {"7.3.1+deb13-cloud-amd64", KprobeMissed, true},
		{"", PeakFile, false},
	} {
		if got := Since(c.rel, c.f); got != c.want {
			t.Errorf("Since(%q, %v) = %v, want %v", c.rel, c.f, got, c.want)
		}
	}
}
