package chargeprof

import "sort"

// Func is one user function's share of the charges.
type Func struct {
	Name  string
	File  string            // with line of the first frame seen, "" without
	Self  uint64            // pages of requests where it is the innermost user frame
	Cum   uint64            // pages of requests with it anywhere on the user stack
	Kinds map[string]uint64 // Self split by what the pages were for
}

// Top is the n user functions with the most Self pages (all when n <= 0).
// Requests without a user stack count under their reason, in brackets.
func Top(stacks []Stack, n int) []Func {
	by := map[string]*Func{}
	get := func(name, file string) *Func {
		f := by[name]
		if f == nil {
			f = &Func{Name: name, File: file, Kinds: map[string]uint64{}}
			by[name] = f
		}
		return f
	}
	for _, s := range stacks {
		if len(s.User) == 0 {
			f := get("["+orDefault(s.NoUser, "no user stack")+"]", "")
			f.Self += s.Pages
			f.Cum += s.Pages
			f.Kinds[s.Kind] += s.Pages
			continue
		}
		seen := map[string]bool{}
		for i, fr := range s.User {
			name := fr.Name()
			file := ""
			if fr.File != "" {
				file = fr.File
			}
			f := get(name, file)
			if i == 0 {
				f.Self += s.Pages
				f.Kinds[s.Kind] += s.Pages
			}
			if !seen[name] {
				seen[name] = true
				f.Cum += s.Pages
			}
		}
	}
	out := make([]Func, 0, len(by))
	for _, f := range by {
		if f.Self > 0 {
			out = append(out, *f)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Self > out[j].Self || out[i].Self == out[j].Self && out[i].Name < out[j].Name
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}
