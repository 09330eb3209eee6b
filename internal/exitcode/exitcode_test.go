package exitcode

import (
	"os"
	"strings"
	"testing"

	"github.com/cgpeak/cgpeak/internal/runner"
)

// The README's table is the one --help prints, row for row, and the codes
// are distinct: each tells one kind of failure from every other.
func TestREADMETable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	want.WriteString("| code | meaning |\n| --- | --- |\n")
	seen := map[string]bool{}
	for _, c := range Table {
		if seen[c.Code] {
			t.Errorf("code %s twice", c.Code)
		}
		seen[c.Code] = true
		want.WriteString("| " + c.Code + " | " + c.Meaning + " |\n")
	}
	if !strings.Contains(string(b), want.String()) {
		t.Errorf("README.md has not the exit code table; it should read:\n%s", want.String())
	}
	if NoExec != runner.ExitNoExec || NotFound != runner.ExitNotFound {
		t.Errorf("126/127 are the runner's: %d/%d", runner.ExitNoExec, runner.ExitNotFound)
	}
}
