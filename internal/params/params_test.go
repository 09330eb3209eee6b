package params

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

func TestScanValues(t *testing.T) {
	for _, c := range []struct {
		min, max, step string
		want           []string
	}{
		{"1", "3", "", []string{"1", "2", "3"}},
		{"-2", "0", "", []string{"-2", "-1", "0"}},
		{"0", "1", "0.25", []string{"0", "0.25", "0.50", "0.75", "1.00"}},
		{"1", "3", "0.5", []string{"1", "1.5", "2.0", "2.5", "3.0"}},
		// 0.1 ten times is exactly 1 in decimals, not 0.9999999999999999.
		{"0", "1", "0.1", []string{"0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1.0"}},
		{"5", "5", "", []string{"5"}},
	} {
		p, err := Scan("x", c.min, c.max, c.step)
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		if !reflect.DeepEqual(p.Values, c.want) {
			t.Errorf("scan %s..%s step %q = %v, want %v", c.min, c.max, c.step, p.Values, c.want)
		}
	}
	for _, bad := range [][3]string{{"3", "1", ""}, {"a", "3", ""}, {"0", "1", "0"}, {"0", "1", "-1"}, {"0.5", "2", ""}, {"0", "1e9", ""}} {
		if _, err := Scan("x", bad[0], bad[1], bad[2]); err == nil {
			t.Errorf("scan %v accepted", bad)
		}
	}
	if _, err := Scan("1x", "1", "2", ""); err == nil {
		t.Error("a name starting with a digit accepted")
	}
}

func TestExpandOrderAndNames(t *testing.T) {
	a, _ := List("a", "1,2")
	b, _ := List("b", "x,y")
	got, err := Expand([]string{"run {a} {b}", "other {b}"}, []string{"r-{a}{b}", "o-{b}"}, []Param{a, b})
	if err != nil {
		t.Fatal(err)
	}
	var lines, names []string
	for _, c := range got {
		lines = append(lines, c.Line)
		names = append(names, c.Name)
	}
	wantLines := []string{"run 1 x", "other x", "run 2 x", "other x", "run 1 y", "other y", "run 2 y", "other y"}
	if !reflect.DeepEqual(lines, wantLines) {
		t.Errorf("lines %v, want %v", lines, wantLines)
	}
	if names[2] != "r-2x" || names[7] != "o-y" {
		t.Errorf("names %v", names)
	}
	if !reflect.DeepEqual(got[3].Params, []Value{{"a", "2"}, {"b", "x"}}) {
		t.Errorf("params of %q: %v", got[3].Line, got[3].Params)
	}
	if _, err := Expand([]string{"a", "b"}, []string{"one"}, nil); err == nil {
		t.Error("one name for two commands accepted")
	}
	if _, err := Expand([]string{"a"}, nil, []Param{a, a}); err == nil {
		t.Error("a parameter given twice accepted")
	}
	if _, err := List("e", "1,,2"); err == nil {
		t.Error("an empty list value accepted")
	}
}

// The same command line through hyperfine (where it is installed) gives the
// same commands in the same order with the same parameters.
func TestExpandAgreesWithHyperfine(t *testing.T) {
	hf, err := exec.LookPath("hyperfine")
	if err != nil {
		t.Skip("hyperfine is not installed: nothing to compare with")
	}
	out := filepath.Join(t.TempDir(), "h.json")
	args := []string{"-N", "--runs", "1", "-L", "a", "1,2", "-L", "b", "x,y,z", "--export-json", out, "true {a} {b}", "true B{b}"}
	if b, err := exec.Command(hf, args...).CombinedOutput(); err != nil {
		t.Fatalf("hyperfine: %v\n%s", err, b)
	}
	scan := filepath.Join(t.TempDir(), "s.json")
	if b, err := exec.Command(hf, "-N", "--runs", "1", "-P", "x", "0", "1", "-D", "0.25", "--export-json", scan, "true {x}").CombinedOutput(); err != nil {
		t.Fatalf("hyperfine: %v\n%s", err, b)
	}
	type res struct {
		Results []struct {
			Command    string            `json:"command"`
			Parameters map[string]string `json:"parameters"`
		} `json:"results"`
	}
	read := func(f string) res {
		var r res
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	check := func(h res, mine []Command) {
		if len(h.Results) != len(mine) {
			t.Fatalf("hyperfine ran %d commands, Expand made %d", len(h.Results), len(mine))
		}
		for i, r := range h.Results {
			pm := map[string]string{}
			for _, v := range mine[i].Params {
				pm[v.Name] = v.Value
			}
			if r.Command != mine[i].Line || !reflect.DeepEqual(r.Parameters, pm) {
				t.Errorf("command %d: hyperfine %q %v, Expand %q %v", i, r.Command, r.Parameters, mine[i].Line, pm)
			}
		}
	}
	a, _ := List("a", "1,2")
	b, _ := List("b", "x,y,z")
	mine, err := Expand([]string{"true {a} {b}", "true B{b}"}, nil, []Param{a, b})
	if err != nil {
		t.Fatal(err)
	}
	check(read(out), mine)
	x, err := Scan("x", "0", "1", "0.25")
	if err != nil {
		t.Fatal(err)
	}
	mine, _ = Expand([]string{"true {x}"}, nil, []Param{x})
	check(read(scan), mine)
}
