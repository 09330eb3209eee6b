package params

import (
	"reflect"
	"strings"
	"testing"
)

// Command lines become what runs: through the shell, or split into words
// with none, once per value of each parameter; and the flag mistakes are
// refused.
func TestLinesRuns(t *testing.T) {
	l := Lines{Lines: []string{"touch {n} 'a b'"}, List: []string{"n" + Sep + "1,2"}, Shell: "/bin/sh"}
	runs, err := l.Runs()
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || !reflect.DeepEqual(runs[1].Argv, []string{"/bin/sh", "-c", "touch 2 'a b'"}) || runs[1].Params[0] != (Value{"n", "2"}) {
		t.Errorf("through the shell: %+v", runs)
	}
	l.Shell = "none"
	if runs, err = l.Runs(); err != nil || !reflect.DeepEqual(runs[0].Argv, []string{"touch", "1", "a b"}) {
		t.Errorf("without a shell: %+v, %v", runs, err)
	}
	for _, bad := range []struct {
		l    Lines
		want string
	}{
		{Lines{Lines: []string{" "}, Shell: "none"}, "empty command line"},
		{Lines{Lines: []string{"x"}, Step: "0.5", Shell: "none"}, "goes with --parameter-scan"},
		{Lines{Lines: []string{"x"}, Scan: []string{"a" + Sep + "1" + Sep + "2", "b" + Sep + "1" + Sep + "2"}, Shell: "none"}, "given twice"},
		{Lines{Lines: []string{"x"}, List: []string{"a"}, Shell: "none"}, "takes NAME VALUES"},
	} {
		if _, err := bad.l.Runs(); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: error %v, want %q", bad.l, err, bad.want)
		}
	}
}
