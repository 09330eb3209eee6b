package cgroup

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"unicode"
)

const hybridMountinfo = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

func TestParseMountinfoHybrid(t *testing.T) {
	ms, err := ParseMountinfo(strings.NewReader(hybridMountinfo))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 {
		t.Fatalf("got %d cgroup mounts, want 3: %+v", len(ms), ms)
	}
	if ms[0].Point != "/sys/fs/cgroup/memory" || !has(ms[0].Controllers, "memory") || ms[0].V2 {
		t.Errorf("memory mount = %+v", ms[0])
	}
	if len(ms[1].Controllers) != 0 {
		t.Errorf("name=systemd must not count as a controller: %+v", ms[1])
	}
	if !ms[2].V2 {
		t.Errorf("unified mount not v2: %+v", ms[2])
	}
}

func TestParseMountinfoEscapes(t *testing.T) {
	ms, err := ParseMountinfo(strings.NewReader(`1 0 0:1 / /mnt/my\040cg rw - cgroup2 cgroup2 rw` + "\n"))
	if err != nil || len(ms) != 1 || ms[0].Point != "/mnt/my cg" {
		t.Fatalf("got %+v, %v", ms, err)
	}
	if _, err := ParseMountinfo(strings.NewReader("garbage\n")); err == nil {
		t.Fatal("want an error for a line without separator")
	}
}

func TestLocate(t *testing.T) {
	mounts, _ := ParseMountinfo(strings.NewReader(hybridMountinfo))
	members, err := ParseProcCgroup(strings.NewReader("9:name=systemd:/\n4:memory:/a/b\n0::/\n"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := locate(mounts, members, nil)
	if err != nil || h.V2 || h.Self != "/sys/fs/cgroup/memory/a/b" {
		t.Fatalf("hybrid: %+v %v", h, err)
	}
	v2 := []Mount{{Root: "/", Point: "/sys/fs/cgroup", V2: true}}
	members, _ = ParseProcCgroup(strings.NewReader("0::/user.slice/x.scope\n"))
	h, err = locate(v2, members, func(string) ([]byte, error) { return []byte("cpu io memory pids\n"), nil })
	if err != nil || !h.V2 || h.Self != "/sys/fs/cgroup/user.slice/x.scope" {
		t.Fatalf("v2: %+v %v", h, err)
	}
	_, err = locate(v2, members, func(string) ([]byte, error) { return []byte("cpu io\n"), nil })
	if err == nil {
		t.Fatal("v2 without memory: want an error")
	}
	_, err = locate(v2, members, func(string) ([]byte, error) { return nil, errors.New("x") })
	if err == nil {
		t.Fatal("unreadable controllers: want an error")
	}
}

func TestParseFlatKeyed(t *testing.T) {
	m, err := ParseFlatKeyed(strings.NewReader("anon 4096\nfile 0\n\nkernel 12288\n"))
	if err != nil || m["anon"] != 4096 || m["kernel"] != 12288 || len(m) != 3 {
		t.Fatalf("got %v %v", m, err)
	}
	for _, bad := range []string{"anon\n", "anon x\n", "anon 1 2\n", "anon -1\n"} {
		if _, err := ParseFlatKeyed(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func TestParseProcCgroupBad(t *testing.T) {
	for _, bad := range []string{"x:memory:/\n", "4:memory\n"} {
		if _, err := ParseProcCgroup(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

// FuzzParseMountinfo: whatever the parser accepts, writing its mounts back
// as mountinfo lines (escaping as the kernel does) and parsing again gives
// the same mounts.
func FuzzParseMountinfo(f *testing.F) {
	f.Add(hybridMountinfo)
	f.Add("1 2 0:3 /a\\040b /mnt/x\\134y rw shared:1 - cgroup2 none rw\n")
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := ParseMountinfo(strings.NewReader(s))
		if err != nil {
			return
		}
		var b strings.Builder
		for i, m := range ms {
			fs, opts := "cgroup2", "rw"
			if !m.V2 {
				fs = "cgroup"
				for _, c := range m.Controllers {
					opts += "," + c
				}
			}
			fmt.Fprintf(&b, "%d 1 0:%d %s %s rw - %s %s %s\n", i+10, i, escapeMount(m.Root), escapeMount(m.Point), fs, fs, opts)
		}
		again, err := ParseMountinfo(strings.NewReader(b.String()))
		if err != nil {
			t.Fatalf("%q: parsing its own mounts back (%q): %v", s, b.String(), err)
		}
		if !reflect.DeepEqual(ms, again) {
			t.Fatalf("%q: parsed %+v, written back and parsed %+v", s, ms, again)
		}
	})
}

// escapeMount writes every byte outside printable ASCII, and space and
// backslash, as the kernel's octal escape.
func escapeMount(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '\\' {
			fmt.Fprintf(&b, "\\%03o", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// FuzzParseProcCgroup: whatever the parser accepts, written back as
// ID:CONTROLLERS:PATH lines, parses to the same memberships.
func FuzzParseProcCgroup(f *testing.F) {
	f.Add("4:memory:/a\n0::/\n")
	f.Add("12:cpu,cpuacct:/x:y\n")
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := ParseProcCgroup(strings.NewReader(s))
		if err != nil {
			return
		}
		var b strings.Builder
		for _, m := range ms {
			fmt.Fprintf(&b, "%d:%s:%s\n", m.ID, strings.Join(m.Controllers, ","), m.Path)
		}
		again, err := ParseProcCgroup(strings.NewReader(b.String()))
		if err != nil {
			t.Fatalf("%q: parsing its own lines back (%q): %v", s, b.String(), err)
		}
		if !reflect.DeepEqual(ms, again) {
			t.Fatalf("%q: parsed %+v, written back and parsed %+v", s, ms, again)
		}
	})
}

// FuzzParseFlatKeyed: the parser agrees with a second, byte-by-byte one on
// what is valid and on every key's value (the last line of a key wins).
func FuzzParseFlatKeyed(f *testing.F) {
	f.Add("anon 1\nfile 2\n")
	f.Add("a 1\na 18446744073709551615\n\n  b\t0\r\n")
	f.Add("a 18446744073709551616\n")
	f.Add("a 1 2\n")
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 60000 {
			return // beyond one line's buffer either way
		}
		m, err := ParseFlatKeyed(strings.NewReader(s))
		want, ok := flatKeyedReference(s)
		if (err == nil) != ok {
			t.Fatalf("%q: parser error %v, reference accepts: %v", s, err, ok)
		}
		if ok && !reflect.DeepEqual(m, want) {
			t.Fatalf("%q: parser %v, reference %v", s, m, want)
		}
	})
}

// flatKeyedReference is the second parser: lines split at \n (a trailing \r
// dropped), words split at Unicode white space, values as decimal digits
// that fit 64 bits.
func flatKeyedReference(s string) (map[string]uint64, bool) {
	out := map[string]uint64{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSuffix(line, "\r")
		var words []string
		start := -1
		for i, r := range line {
			if unicode.IsSpace(r) {
				if start >= 0 {
					words = append(words, line[start:i])
					start = -1
				}
			} else if start < 0 {
				start = i
			}
		}
		if start >= 0 {
			words = append(words, line[start:])
		}
		if len(words) == 0 {
			continue
		}
		if len(words) != 2 || words[1] == "" {
			return nil, false
		}
		var v uint64
		for _, c := range []byte(words[1]) {
			if c < '0' || c > '9' || v > (math.MaxUint64-uint64(c-'0'))/10 {
				return nil, false
			}
			v = v*10 + uint64(c-'0')
		}
		out[words[0]] = v
	}
	return out, true
}

func TestParsePressure(t *testing.T) {
	p, err := ParsePressure(strings.NewReader("some avg10=1.50 avg60=0.25 avg300=0.00 total=1234\nfull avg10=0.75 avg60=0.00 avg300=0.00 total=99\n"))
	if err != nil || p != (Pressure{Some10: 1.5, Some60: 0.25, Full10: 0.75}) {
		t.Errorf("%+v %v", p, err)
	}
	for _, bad := range []string{"", "other avg10=1", "some avg10=x", "some avg10", "some avg10=101"} {
		if _, err := ParsePressure(strings.NewReader(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseLimit(t *testing.T) {
	for _, c := range []struct {
		in      string
		v       uint64
		limited bool
		bad     bool
	}{
		{"max\n", 0, false, false},
		{"536870912\n", 536870912, true, false},
		{"9223372036854771712\n", 0, false, false},
		{"lots", 0, false, true},
	} {
		v, lim, err := ParseLimit(c.in)
		if v != c.v || lim != c.limited || (err != nil) != c.bad {
			t.Errorf("%q: %d %v %v", c.in, v, lim, err)
		}
	}
}

func FuzzParsePressure(f *testing.F) {
	f.Add("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePressure(strings.NewReader(s))
		if err == nil && (p.Some10 < 0 || p.Some10 > 100 || p.Full10 < 0 || p.Full10 > 100) {
			t.Fatalf("%q: %+v", s, p)
		}
	})
}

func FuzzParseLimit(f *testing.F) {
	f.Add("max")
	f.Add("1024")
	f.Fuzz(func(t *testing.T, s string) {
		v, limited, err := ParseLimit(s)
		if err != nil && (v != 0 || limited) || !limited && v != 0 {
			t.Fatalf("%q: %d %v %v", s, v, limited, err)
		}
	})
}
