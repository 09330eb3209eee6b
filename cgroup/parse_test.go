package cgroup

import (
	"errors"
	"strings"
	"testing"
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

func FuzzParseMountinfo(f *testing.F) {
	f.Add(hybridMountinfo)
	f.Fuzz(func(t *testing.T, s string) { _, _ = ParseMountinfo(strings.NewReader(s)) })
}

func FuzzParseProcCgroup(f *testing.F) {
	f.Add("4:memory:/a\n0::/\n")
	f.Fuzz(func(t *testing.T, s string) { _, _ = ParseProcCgroup(strings.NewReader(s)) })
}

func FuzzParseFlatKeyed(f *testing.F) {
	f.Add("anon 1\nfile 2\n")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseFlatKeyed(strings.NewReader(s))
		if err == nil && m == nil {
			t.Fatal("nil map without error")
		}
	})
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
