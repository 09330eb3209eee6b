package runas

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// passwdEntry reads the user's line of /etc/passwd: the ground truth Lookup
// must agree with.
func passwdEntry(t *testing.T, name string) (uid, gid uint32, home string) {
	t.Helper()
	f, err := os.Open("/etc/passwd")
	if err != nil {
		t.Skipf("no /etc/passwd here: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.Split(sc.Text(), ":")
		if len(p) >= 6 && p[0] == name {
			u, _ := strconv.ParseUint(p[2], 10, 32)
			g, _ := strconv.ParseUint(p[3], 10, 32)
			return uint32(u), uint32(g), p[5]
		}
	}
	t.Skipf("no user %s in /etc/passwd", name)
	return
}

func TestLookupAgreesWithPasswd(t *testing.T) {
	for _, name := range []string{"root", "nobody"} {
		uid, gid, home := passwdEntry(t, name)
		for _, key := range []string{name, strconv.Itoa(int(uid))} {
			id, err := Lookup(key)
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			if id.Name != name || id.UID != uid || id.GID != gid || id.Home != home {
				t.Errorf("%s: got %+v, /etc/passwd says uid %d gid %d home %s", key, id, uid, gid, home)
			}
		}
	}
	if _, err := Lookup("no-such-user-cgpeak"); err == nil {
		t.Error("an unknown user was found")
	}
}

func TestFromSudo(t *testing.T) {
	uid, _, _ := passwdEntry(t, "nobody")
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "SUDO_UID" {
				return v
			}
			return ""
		}
	}
	if id, err := FromSudo(0, env(strconv.Itoa(int(uid)))); err != nil || id == nil || id.UID != uid || id.Why != "the user who ran sudo" {
		t.Errorf("root under sudo: %+v, %v", id, err)
	}
	for _, c := range []struct {
		euid int
		v    string
	}{{0, ""}, {0, "0"}, {1000, strconv.Itoa(int(uid))}} {
		if id, err := FromSudo(c.euid, env(c.v)); id != nil || err != nil {
			t.Errorf("euid %d SUDO_UID %q: %+v, %v; want none", c.euid, c.v, id, err)
		}
	}
}

func TestEnvReplacesTheUsersVariables(t *testing.T) {
	id := &Identity{Name: "u", Home: "/home/u"}
	got := id.Env([]string{"HOME=/root", "PATH=/bin", "USER=root", "LOGNAME=root", "HOMEX=1"})
	want := []string{"PATH=/bin", "HOMEX=1", "HOME=/home/u", "USER=u", "LOGNAME=u"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v, want %v", got, want)
	}
}
