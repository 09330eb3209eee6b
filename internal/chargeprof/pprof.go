package chargeprof

import (
	"io"
	"strconv"

	"github.com/google/pprof/profile"
)

// WritePprof writes the stacks as a gzipped pprof profile: two sample
// types, requests (count) and charged (bytes); each sample's locations are
// its kernel frames then its user frames, innermost first as pprof wants
// (so a graph reads from main down to try_charge_memcg); labels kind,
// cgroup, process and a pid number label.
func WritePprof(w io.Writer, stacks []Stack, pageSize uint64, comment string) error {
	p := &profile.Profile{
		SampleType:        []*profile.ValueType{{Type: "requests", Unit: "count"}, {Type: "charged", Unit: "bytes"}},
		DefaultSampleType: "charged",
		PeriodType:        &profile.ValueType{Type: "charged", Unit: "bytes"},
		Period:            int64(pageSize),
		Comments:          []string{comment},
	}
	kernel := &profile.Mapping{ID: 1, File: "[kernel.kallsyms]", HasFunctions: true}
	p.Mapping = append(p.Mapping, kernel)
	mappings := map[string]*profile.Mapping{}
	funcs := map[[2]string]*profile.Function{}
	locs := map[string]*profile.Location{}
	fn := func(name, file string) *profile.Function {
		k := [2]string{name, file}
		if f := funcs[k]; f != nil {
			return f
		}
		f := &profile.Function{ID: uint64(len(p.Function) + 1), Name: name, SystemName: name, Filename: file}
		p.Function = append(p.Function, f)
		funcs[k] = f
		return f
	}
	loc := func(k string, mk func() *profile.Location) *profile.Location {
		if l := locs[k]; l != nil {
			return l
		}
		l := mk()
		l.ID = uint64(len(p.Location) + 1)
		p.Location = append(p.Location, l)
		locs[k] = l
		return l
	}
	for _, s := range stacks {
		var ls []*profile.Location
		for _, k := range s.Kernel {
			ls = append(ls, loc("k:"+k, func() *profile.Location {
				return &profile.Location{Mapping: kernel, Line: []profile.Line{{Function: fn(k, "")}}}
			}))
		}
		for i, fr := range s.User {
			m := s.Mappings[i]
			var pm *profile.Mapping
			if m.Path != "" {
				mk := m.Path + "\x00" + m.BuildID + "\x00" + strconv.FormatUint(m.Start, 16)
				if pm = mappings[mk]; pm == nil {
					pm = &profile.Mapping{ID: uint64(len(p.Mapping) + 1), Start: m.Start, Limit: m.End, Offset: m.Offset, File: m.Path, BuildID: m.BuildID}
					p.Mapping = append(p.Mapping, pm)
					mappings[mk] = pm
				}
				if fr.Func != "" {
					pm.HasFunctions = true
					pm.HasFilenames = pm.HasFilenames || fr.File != ""
					pm.HasLineNumbers = pm.HasLineNumbers || fr.Line != 0
				}
			}
			addr := s.UserAddrs[i]
			lk := "u:" + m.Path + "\x00" + m.BuildID + "\x00" + strconv.FormatUint(addr, 16) + "\x00" + strconv.FormatBool(i > 0)
			ls = append(ls, loc(lk, func() *profile.Location {
				l := &profile.Location{Mapping: pm, Address: addr}
				name := fr.Name()
				if fr.Func == "" && pm == nil {
					name = "[unmapped 0x" + strconv.FormatUint(addr, 16) + "]"
				}
				l.Line = []profile.Line{{Function: fn(name, fr.File), Line: int64(fr.Line)}}
				return l
			}))
		}
		if s.NoUser != "" {
			ls = append(ls, loc("n:"+s.NoUser, func() *profile.Location {
				return &profile.Location{Line: []profile.Line{{Function: fn("["+s.NoUser+"]", "")}}}
			}))
		}
		p.Sample = append(p.Sample, &profile.Sample{
			Location: ls,
			Value:    []int64{int64(s.Requests), int64(s.Pages * pageSize)},
			Label:    map[string][]string{"kind": {s.Kind}, "cgroup": {s.Cgroup}, "process": {s.Comm}},
			NumLabel: map[string][]int64{"pid": {int64(s.PID)}},
		})
	}
	// pprof shows the first mapping as the profile's binary: the kernel's
	// goes last.
	p.Mapping = append(p.Mapping[1:], p.Mapping[0])
	if err := p.CheckValid(); err != nil {
		return err
	}
	return p.Write(w)
}
