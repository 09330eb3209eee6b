package params

import (
	"reflect"
	"testing"
)

func TestJoinMultiWord(t *testing.T) {
	got, err := JoinMultiWord([]string{"-r", "3", "-P", "n", "1", "5", "--parameter-list", "c", "gcc,clang", "cmd {n}", "--", "-P", "x"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"-r", "3", "--parameter-scan=n\x1f1\x1f5", "--parameter-list=c\x1fgcc,clang", "cmd {n}", "--", "-P", "x"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%q, want %q", got, want)
	}
	if _, err := JoinMultiWord([]string{"-P", "n", "1"}); err == nil {
		t.Error("-P with two words accepted")
	}
}

func TestSplitWords(t *testing.T) {
	for line, want := range map[string][]string{
		`./solve --input 'day 1.txt'`: {"./solve", "--input", "day 1.txt"},
		`echo "a b" c\ d`:             {"echo", "a b", "c d"},
		`sleep 0.1`:                   {"sleep", "0.1"},
	} {
		got, err := SplitWords(line)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %q %v, want %q", line, got, err, want)
		}
	}
	for _, bad := range []string{"", "   ", `echo "unclosed`} {
		if _, err := SplitWords(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
