package main

import "testing"

func TestParseSize(t *testing.T) {
	good := map[string]int64{"4096": 4096, "512K": 512 << 10, "512M": 512 << 20, "1.5G": 3 << 29, "2GiB": 2 << 30, "0": 0, "1T": 1 << 40}
	for in, want := range good {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "M", "-1M", "1X", "abc", "NaN", "1e3", "0x10", "Inf", "1_000", "1.2.3", "."} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q): want an error", bad)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	f.Add("1.5G")
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := ParseSize(s); err == nil && v < 0 {
			t.Fatalf("negative size %d from %q", v, s)
		}
	})
}
