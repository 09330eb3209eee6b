// Package params expands benchmark commands over parameters the way
// hyperfine does (--parameter-scan, --parameter-list and {NAME} in command
// lines), so a hyperfine command line gives the same runs under cgpeak.
package params

import (
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strings"
)

// Param is one named parameter and the values it takes, in order.
type Param struct {
	Name   string
	Values []string
}

// Value is one parameter's value in an expanded command.
type Value struct {
	Name, Value string
}

// Command is one command after expansion.
type Command struct {
	Line   string  // the command line with every {NAME} replaced
	Name   string  // the display name: --command-name after expansion, or Line
	Params []Value // in the order the parameters were given; nil without parameters
}

// maxValues bounds a scan: a typo in MIN/MAX must not start millions of runs.
const maxValues = 100000

// Scan lists MIN, MIN+STEP, ... up to MAX inclusive. With step "" the values
// are integers (step 1). With a step they are decimals, printed as hyperfine
// prints them so commands and names come out the same: the first with MIN's
// own fractional digits, the others with as many as MIN or STEP has the most
// ("-P x 0 1 -D 0.25" gives 0, 0.25, 0.50, 0.75, 1.00). Exact decimal
// arithmetic (big.Rat) keeps 0.1 steps from drifting.
func Scan(name, min, max, step string) (Param, error) {
	if err := checkName(name); err != nil {
		return Param{}, err
	}
	lo, ok1 := new(big.Rat).SetString(min)
	hi, ok2 := new(big.Rat).SetString(max)
	if !ok1 || !ok2 {
		return Param{}, fmt.Errorf("parameter scan %s: %q to %q are not numbers", name, min, max)
	}
	digits, first := 0, fraction(min)
	st := big.NewRat(1, 1)
	if step == "" {
		if !lo.IsInt() || !hi.IsInt() {
			return Param{}, fmt.Errorf("parameter scan %s: %s and %s must be whole numbers without a step (give --parameter-step-size for decimals)", name, min, max)
		}
	} else {
		var ok bool
		if st, ok = new(big.Rat).SetString(step); !ok || st.Sign() <= 0 {
			return Param{}, fmt.Errorf("parameter scan %s: step %q must be a number above 0", name, step)
		}
		digits = first
		if f := fraction(step); f > digits {
			digits = f
		}
	}
	if lo.Cmp(hi) > 0 {
		return Param{}, fmt.Errorf("parameter scan %s: minimum %s is above maximum %s", name, min, max)
	}
	p := Param{Name: name}
	for v := new(big.Rat).Set(lo); v.Cmp(hi) <= 0; v.Add(v, st) {
		if len(p.Values) == maxValues {
			return Param{}, fmt.Errorf("parameter scan %s: more than %d values; use a larger step", name, maxValues)
		}
		d := digits
		if len(p.Values) == 0 {
			d = first
		}
		p.Values = append(p.Values, v.FloatString(d))
	}
	return p, nil
}

// fraction is how many digits a decimal number has after its point.
func fraction(s string) int {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return len(s) - i - 1
	}
	return 0
}

// List parses "a,b,c" (hyperfine's -L); a value may not be empty.
func List(name, values string) (Param, error) {
	if err := checkName(name); err != nil {
		return Param{}, err
	}
	p := Param{Name: name, Values: strings.Split(values, ",")}
	for _, v := range p.Values {
		if v == "" {
			return Param{}, fmt.Errorf("parameter list %s: an empty value in %q", name, values)
		}
	}
	return p, nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func checkName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("parameter name %q: use letters, digits and _ (it is written {%s} in commands)", name, name)
	}
	return nil
}

// Expand makes the commands to measure: for each combination of the
// parameters' values, each command line in the order given. The first
// parameter varies fastest, as in hyperfine's -L product. names, if not nil, holds a display name per command
// line, expanded the same way. Without parameters the lines come back as they
// are. Parameter names must be distinct.
func Expand(lines, names []string, ps []Param) ([]Command, error) {
	if names != nil && len(names) != len(lines) {
		return nil, fmt.Errorf("%d command names for %d commands: give one --command-name per command", len(names), len(lines))
	}
	seen := map[string]bool{}
	for _, p := range ps {
		if seen[p.Name] {
			return nil, fmt.Errorf("parameter %s given twice", p.Name)
		}
		seen[p.Name] = true
		if len(p.Values) == 0 {
			return nil, errors.New("parameter " + p.Name + " has no values")
		}
	}
	combos := [][]Value{nil}
	for _, p := range ps {
		var next [][]Value
		for _, v := range p.Values {
			for _, c := range combos {
				next = append(next, append(append([]Value(nil), c...), Value{p.Name, v}))
			}
		}
		combos = next
	}
	var out []Command
	for _, c := range combos {
		for i, l := range lines {
			cmd := Command{Line: Substitute(l, c), Params: c}
			cmd.Name = cmd.Line
			if names != nil {
				cmd.Name = Substitute(names[i], c)
			}
			out = append(out, cmd)
		}
	}
	return out, nil
}

// Substitute replaces each {NAME} in s by its value.
func Substitute(s string, vs []Value) string {
	for _, v := range vs {
		s = strings.ReplaceAll(s, "{"+v.Name+"}", v.Value)
	}
	return s
}
