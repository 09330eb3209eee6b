package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/cgpeak/cgpeak/stats"
)

// The echo of a command is what a shell needs to run it again: the shell
// itself, given the echo, gets the same words back.
func TestShellJoinRoundTrips(t *testing.T) {
	for _, argv := range [][]string{
		{"sh", "-c", "seq 1 2000000 | sort -r | tail -1"},
		{"echo", "it's", "", "a b", "$HOME", `back\slash`, "plain-word_1.2"},
	} {
		joined := shellJoin(argv)
		got, err := exec.Command("sh", "-c", "for a in "+joined+"; do printf '[%s]' \"$a\"; done").Output()
		want := "[" + strings.Join(argv, "][") + "]"
		if err != nil || string(got) != want {
			t.Errorf("shellJoin(%q) = %s: the shell reads back %s (%v), want %s", argv, joined, got, err, want)
		}
	}
	if got := shellJoin([]string{"ls", "-l", "/tmp"}); got != "ls -l /tmp" {
		t.Errorf("plain words quoted: %s", got)
	}
}

// One run, or a figure the same in every run, is printed as one figure: no
// "± 0", no median/min/max, and a zero time is "0 s", not "0.00 s".
func TestOneFigureLines(t *testing.T) {
	var b bytes.Buffer
	secLine(&b, "wall time", stats.Summarize([]float64{0.0123}), "src", nil)
	secLine(&b, "sys time", stats.Summarize([]float64{0, 0, 0}), "getrusage", nil)
	byteLine(&b, "cgroup peak memory", stats.Summarize([]float64{1 << 20}), "memory.peak")
	secLine(&b, "user time", stats.Summarize([]float64{0.01, 0.02, 0.03}), "", nil)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := []string{"12.3 ms   (one run; src)", "0 s   (the same in every run; getrusage)", "1.00 MiB     (one run; memory.peak)", "20 ms ± 10 ms"}
	for i, w := range want {
		if i >= len(lines) || !strings.Contains(lines[i], w) {
			t.Errorf("line %d %q, want it to hold %q", i, lines[min(i, len(lines)-1)], w)
		}
	}
	if strings.Count(b.String(), "±") != 1 {
		t.Errorf("± printed for one-figure lines:\n%s", b.String())
	}
}
