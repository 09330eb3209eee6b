// Package cgroup finds the memory controller, makes a run's leaf cgroup and
// reads the kernel's memory figures from it.
package cgroup

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Mount is one cgroup filesystem mount from /proc/self/mountinfo.
type Mount struct {
	Root        string   // the cgroup path this mount exposes (field 4)
	Point       string   // where it is mounted
	V2          bool     // cgroup2 filesystem
	Controllers []string // v1 only: the subsystems bound to this hierarchy
}

// ParseMountinfo returns the cgroup and cgroup2 mounts listed in r.
func ParseMountinfo(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if line == "" {
			continue
		}
		// Optional fields end with a lone "-"; the filesystem type follows it.
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			return nil, fmt.Errorf("mountinfo line %d: no separator", n)
		}
		f := strings.Fields(pre)
		g := strings.Fields(post)
		if len(f) < 6 || len(g) < 2 {
			return nil, fmt.Errorf("mountinfo line %d: too few fields", n)
		}
		fstype := g[0]
		if fstype != "cgroup" && fstype != "cgroup2" {
			continue
		}
		m := Mount{Root: unescape(f[3]), Point: unescape(f[4]), V2: fstype == "cgroup2"}
		if !m.V2 && len(g) >= 3 {
			for _, o := range strings.Split(g[2], ",") {
				switch o {
				case "rw", "ro", "":
				default:
					if !strings.Contains(o, "=") {
						m.Controllers = append(m.Controllers, o)
					}
				}
			}
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading mountinfo: %w", err)
	}
	return out, nil
}

// unescape undoes the octal escapes (\040 for space) the kernel writes in mountinfo.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Membership is one line of /proc/PID/cgroup.
type Membership struct {
	ID          int
	Controllers []string // empty for the v2 line "0::/path"
	Path        string
}

// ParseProcCgroup parses /proc/PID/cgroup.
func ParseProcCgroup(r io.Reader) ([]Membership, error) {
	var out []Membership
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("cgroup line %d: want ID:CONTROLLERS:PATH, got %q", n, line)
		}
		id, err := strconv.Atoi(parts[0])
		if err != nil {
			return nil, fmt.Errorf("cgroup line %d: bad hierarchy id %q", n, parts[0])
		}
		m := Membership{ID: id, Path: parts[2]}
		if parts[1] != "" {
			m.Controllers = strings.Split(parts[1], ",")
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading /proc/PID/cgroup: %w", err)
	}
	return out, nil
}

// ParseFlatKeyed parses files such as memory.stat and memory.events:
// one "key value" pair a line, values unsigned integers.
func ParseFlatKeyed(r io.Reader) (map[string]uint64, error) {
	out := map[string]uint64{}
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want \"key value\", got %q", n, sc.Text())
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: bad value for %s: %w", n, f[0], err)
		}
		out[f[0]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// Pressure is the memory PSI of a cgroup (memory.pressure, v2): the share
// of time, in percent, some or all of its tasks stalled on memory.
type Pressure struct {
	Some10 float64 `json:"some10"`
	Some60 float64 `json:"some60"`
	Full10 float64 `json:"full10"`
	Full60 float64 `json:"full60"`
}

// ParsePressure parses a PSI file: lines "some avg10=0.00 avg60=0.00
// avg300=0.00 total=0" and "full ...".
func ParsePressure(r io.Reader) (Pressure, error) {
	var p Pressure
	sc := bufio.NewScanner(r)
	seen := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		var avg10, avg60 *float64
		switch f[0] {
		case "some":
			avg10, avg60 = &p.Some10, &p.Some60
		case "full":
			avg10, avg60 = &p.Full10, &p.Full60
		default:
			return p, fmt.Errorf("unexpected pressure line %q", sc.Text())
		}
		for _, kv := range f[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return p, fmt.Errorf("bad pressure field %q", kv)
			}
			var dst *float64
			switch k {
			case "avg10":
				dst = avg10
			case "avg60":
				dst = avg60
			default:
				continue
			}
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || !(x >= 0 && x <= 100) {
				return p, fmt.Errorf("bad pressure value %q", kv)
			}
			*dst = x
		}
		seen++
	}
	if err := sc.Err(); err != nil {
		return p, err
	}
	if seen == 0 {
		return p, fmt.Errorf("empty pressure file")
	}
	return p, nil
}

// ParseLimit parses memory.max ("max" is no limit) or v1
// memory.limit_in_bytes (a value near the top of int64 is no limit).
func ParseLimit(s string) (limit uint64, limited bool, err error) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return 0, false, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("bad memory limit %q", s)
	}
	if v >= 1<<62 {
		return 0, false, nil // v1's PAGE_COUNTER_MAX rounded to pages
	}
	return v, true, nil
}
