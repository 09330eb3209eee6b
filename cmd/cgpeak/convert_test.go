package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/cgpeak/cgpeak/trace"
)

// stdoutOf runs f with stdout in a file and returns what it printed.
func stdoutOf(t *testing.T, f func() int) ([]byte, int) {
	t.Helper()
	tmp, err := os.CreateTemp(t.TempDir(), "stdout")
	if err != nil {
		t.Fatal(err)
	}
	defer tmp.Close()
	saved := os.Stdout
	os.Stdout = tmp
	code := f()
	os.Stdout = saved
	out, err := os.ReadFile(tmp.Name())
	if err != nil {
		t.Fatal(err)
	}
	return out, code
}

// explainFields is explain --json of a trace, by field; the trace's name
// left out.
func explainFields(t *testing.T, tf string, args ...string) map[string]any {
	t.Helper()
	out, code := stdoutOf(t, func() int { return explainCmd(append(append([]string{"--json"}, args...), tf)) })
	if code != 0 {
		t.Fatalf("explain %s: exit %d", tf, code)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("explain --json %s: %v", tf, err)
	}
	delete(m, "trace")
	return m
}

// Every recorded trace, converted to the binary form and back to JSON
// Lines, explains the same in all three: every field of explain --json.
func TestExplainSameInBothForms(t *testing.T) {
	traces, _ := filepath.Glob("../../testdata/traces/*.jsonl")
	traces = append(traces, "../../testdata/userstacks/bookworm-smallbig-charges.jsonl")
	dir := t.TempDir()
	for _, tf := range traces {
		t.Run(filepath.Base(tf), func(t *testing.T) {
			bin := filepath.Join(dir, filepath.Base(tf)+".bin")
			back := filepath.Join(dir, filepath.Base(tf)+".back.jsonl")
			if code := convertCmd([]string{"--to", "binary", tf, bin}); code != 0 {
				t.Fatalf("convert --to binary: exit %d", code)
			}
			if code := convertCmd([]string{bin, back}); code != 0 {
				t.Fatalf("convert back to JSON Lines: exit %d", code)
			}
			raw, _ := os.ReadFile(bin)
			if !bytes.HasPrefix(raw, trace.Magic[:]) {
				t.Fatalf("convert --to binary wrote no binary trace")
			}
			if txt, _ := os.ReadFile(back); !bytes.HasPrefix(txt, []byte(`{"type":"header"`)) {
				t.Fatalf("convert wrote no JSON Lines: %.40q", txt)
			}
			var args []string
			if filepath.Dir(tf) == "../../testdata/userstacks" {
				args = []string{"--top", "5"}
			}
			want := explainFields(t, tf, args...)
			for _, other := range []string{bin, back} {
				got := explainFields(t, other, args...)
				var keys []string
				for k := range want {
					keys = append(keys, k)
				}
				for k := range got {
					if _, ok := want[k]; !ok {
						keys = append(keys, k)
					}
				}
				sort.Strings(keys)
				for _, k := range keys {
					if !reflect.DeepEqual(want[k], got[k]) {
						t.Errorf("%s: %s is %v, from the JSON Lines trace %v", filepath.Base(other), k, got[k], want[k])
					}
				}
			}
		})
	}
}

// convert refuses what it cannot do with explain's exit codes, and leaves
// the destination as it was when the input is a bad trace.
func TestConvertFailures(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte(`{"type":"header","schema":1,"batch_pages":64,"page_size":4096}`+"\n"+`{"t":1,"op":"charge","pages":1}`+"\n{\n"), 0o644)
	out := filepath.Join(dir, "out")
	os.WriteFile(out, []byte("before"), 0o644)
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{bad}, exitUsage},
		{[]string{"--to", "xml", bad, out}, exitUsage},
		{[]string{filepath.Join(dir, "none"), out}, exitUsage},
		{[]string{bad, out}, exitBadTrace},
		{[]string{"--to", "binary", bad, out}, exitBadTrace},
	} {
		if code := convertCmd(c.args); code != c.code {
			t.Errorf("convert %v: exit %d, want %d", c.args, code, c.code)
		}
	}
	if b, _ := os.ReadFile(out); string(b) != "before" {
		t.Errorf("the destination changed: %q", b)
	}
}

// An unknown --trace-format is a usage error, before anything is traced.
func TestTraceFormatFlag(t *testing.T) {
	if code := runCmd([]string{"--trace-output", filepath.Join(t.TempDir(), "t"), "--trace-format", "xml", "--", "true"}); code != exitUsage {
		t.Errorf("run --trace-format xml: exit %d, want %d", code, exitUsage)
	}
	if code := traceCmd([]string{"--pid", "1", "--duration", "1ms", "--trace-format", "xml"}); code != exitUsage {
		t.Errorf("trace --trace-format xml: exit %d, want %d", code, exitUsage)
	}
}
