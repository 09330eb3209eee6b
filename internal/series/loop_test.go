package series

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cgpeak/cgpeak/internal/params"
)

type fakeRun struct{ wall float64 }

func (f *fakeRun) SeriesFigures() Figures { return Figures{Wall: f.wall} }

// Two warm-ups, then as many runs as fill MinTime at 1 s a run (3, above
// MinRuns 2): each command is measured 5 times, 3 of them count, its prepare
// and conclude hooks run around every run and setup and cleanup once, with
// the command's parameter filled in, in that order.
func TestLoopPlanAndHooks(t *testing.T) {
	log := filepath.Join(t.TempDir(), "hooks")
	hook := func(name string) Hook { return Hook{Name: name, Line: "echo " + name + " {n} >> " + log} }
	measured := map[int]int{}
	l := Loop[*fakeRun]{Plan: Plan{Warmup: 2, MinRuns: 2},
		Hooks:   Hooks{Setup: hook("s"), Prepare: hook("p"), Conclude: hook("c"), Cleanup: hook("x"), Shell: "/bin/sh"},
		Measure: func(c int) (*fakeRun, error) { measured[c]++; return &fakeRun{1}, nil },
		Check:   func(c, run int, r *fakeRun) error { return nil },
	}
	rep, err := l.Run([]Command{{Name: "a", Params: []params.Value{{Name: "n", Value: "1"}}}, {Name: "b", Params: []params.Value{{Name: "n", Value: "2"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if measured[0] != 5 || measured[1] != 5 || len(rep.Results) != 2 || rep.Results[0].Runs != 3 || len(rep.Results[1].Each) != 3 {
		t.Fatalf("measured %v, results %d: want 5 runs each, 3 counted", measured, len(rep.Results))
	}
	if rep.Results[1].Parameters["n"] != "2" {
		t.Errorf("parameters %v", rep.Results[1].Parameters)
	}
	b, _ := os.ReadFile(log)
	one := func(n string) string {
		return "s " + n + "\n" + strings.Repeat("p "+n+"\nc "+n+"\n", 5) + "x " + n + "\n"
	}
	if string(b) != one("1")+one("2") {
		t.Errorf("hooks ran:\n%s", b)
	}
}

// A run that Check refuses ends the series after its conclude hook; a
// failing hook ends it with a HookError naming the hook.
func TestLoopStops(t *testing.T) {
	stop := errors.New("stop")
	runs := 0
	log := filepath.Join(t.TempDir(), "conclude")
	l := Loop[*fakeRun]{Plan: Plan{Runs: 4}, Hooks: Hooks{Shell: "/bin/sh", Conclude: Hook{Name: "c", Line: "echo c >> " + log}},
		Measure: func(int) (*fakeRun, error) { runs++; return &fakeRun{1}, nil },
		Check: func(c, run int, r *fakeRun) error {
			if run == 1 {
				return stop
			}
			return nil
		}}
	if _, err := l.Run([]Command{{Name: "a"}}); err != stop || runs != 2 {
		t.Errorf("error %v after %d runs: want stop after 2", err, runs)
	}
	if b, _ := os.ReadFile(log); string(b) != "c\nc\n" {
		t.Errorf("conclude ran %q: want after each of the 2 runs", b)
	}
	l.Check = func(int, int, *fakeRun) error { return nil }
	l.Hooks.Prepare = Hook{Name: "--prepare", Line: "exit 3"}
	var he *HookError
	if _, err := l.Run([]Command{{Name: "a"}}); !errors.As(err, &he) || he.Hook.Name != "--prepare" {
		t.Errorf("error %v: want the failed --prepare", err)
	}
}

func TestPlanCount(t *testing.T) {
	for _, c := range []struct {
		p     Plan
		first float64
		want  int
	}{{Plan{Runs: 7, MinRuns: 10}, 0.001, 7}, {Plan{Single: true, MinRuns: 10}, 0.001, 1}, {Plan{MinRuns: 10}, 0, 10},
		{Plan{MinRuns: 10}, 0.1, 30}, {Plan{MinRuns: 10, MaxRuns: 20}, 0.1, 20}, {Plan{MinRuns: 10}, 5, 10}} {
		if got := c.p.Count(c.first); got != c.want {
			t.Errorf("%+v.Count(%g) = %d, want %d", c.p, c.first, got, c.want)
		}
	}
}

// A signal to cgpeak in the middle of a series keeps the runs that had
// finished: their statistics, marked interrupted, come with the error; the
// command that was not reached is left out, and so is the stopped run.
func TestLoopInterruptedKeepsFinishedRuns(t *testing.T) {
	runs := 0
	stop := &Interrupted{Signal: os.Interrupt, Name: "SIGINT"}
	l := Loop[*fakeRun]{Plan: Plan{Runs: 4},
		Measure: func(c int) (*fakeRun, error) {
			if runs++; runs == 7 { // the third run of the second command
				return nil, stop
			}
			return &fakeRun{float64(c + 1)}, nil
		},
		Check: func(int, int, *fakeRun) error { return nil }}
	rep, err := l.Run([]Command{{Name: "a"}, {Name: "b"}, {Name: "c"}})
	if err != stop || rep == nil {
		t.Fatalf("error %v, report %v: want the interruption with a report", err, rep)
	}
	if !rep.Interrupted || rep.InterruptedBy != "SIGINT" || len(rep.Results) != 2 || rep.Results[0].Runs != 4 || rep.Results[1].Runs != 2 || len(rep.Comparisons) != 1 {
		t.Errorf("report: interrupted %v by %q, %d results, comparisons %d", rep.Interrupted, rep.InterruptedBy, len(rep.Results), len(rep.Comparisons))
	}
	for _, r := range rep.Results {
		t.Logf("%s: %d runs", r.Command, r.Runs)
	}

	// A hook that failed while a signal waits: the terminal's Ctrl-C
	// reached the hook too, so the series was interrupted, not broken.
	sig := make(chan os.Signal, 1)
	sig <- os.Interrupt
	runs = 0
	l.Measure = func(int) (*fakeRun, error) { runs++; return &fakeRun{1}, nil }
	l.Hooks = Hooks{Shell: "/bin/sh", Prepare: Hook{Name: "--prepare", Line: "exit 1"}}
	l.Stop, l.SignalName = sig, func(os.Signal) string { return "SIGINT" }
	rep, err = l.Run([]Command{{Name: "a"}})
	var ie *Interrupted
	if !errors.As(err, &ie) || rep == nil || !rep.Interrupted || len(rep.Results) != 0 {
		t.Errorf("a failed hook with a signal waiting: error %v, report %+v", err, rep)
	}
}
