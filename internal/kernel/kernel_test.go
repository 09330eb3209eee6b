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
