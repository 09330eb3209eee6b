package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cgpeak/cgpeak/internal/kernel"
)

// These run in the systemd VM (make vmtest-systemd): systemd as PID 1, cgroup
// v2, and a lingering user (CGPEAK_VM_USER, uid CGPEAK_VM_UID) whose user
// manager is up. The test binary runs as root and runs cgpeak as that user.

type vmUser struct {
	name   string
	uid    int
	cgpeak string
	touch  string
}

func systemdVM(t *testing.T) vmUser {
	t.Helper()
	if os.Getenv("CGPEAK_VM_MODE") != "systemd" {
		t.Skip("needs the systemd VM (make vmtest-systemd): systemd as init and a user with a systemd user manager")
	}
	uid, err := strconv.Atoi(os.Getenv("CGPEAK_VM_UID"))
	if err != nil {
		t.Fatalf("CGPEAK_VM_UID: %v", err)
	}
	cgpeak, touch := build(t)
	return vmUser{name: os.Getenv("CGPEAK_VM_USER"), uid: uid, cgpeak: cgpeak, touch: touch}
}

// cmd runs argv as the user, with the environment a login session gives
// (its runtime dir and user bus), minus the variables named in unset.
func (u vmUser) cmd(unset []string, argv ...string) *exec.Cmd {
	env := map[string]string{
		"HOME":                     "/home/" + u.name,
		"XDG_RUNTIME_DIR":          fmt.Sprintf("/run/user/%d", u.uid),
		"DBUS_SESSION_BUS_ADDRESS": fmt.Sprintf("unix:path=/run/user/%d/bus", u.uid),
	}
	args := []string{"-u", u.name, "--", "env"}
	for _, k := range unset {
		delete(env, k)
		args = append(args, "-u", k)
	}
	for k, v := range env {
		args = append(args, k+"="+v)
	}
	return exec.Command("runuser", append(args, argv...)...)
}

// dir is a directory the user may write reports into.
func (u vmUser) dir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "cgpeak-user-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chown(d, u.uid, u.uid); err != nil {
		t.Fatal(err)
	}
	return d
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// runAs runs cgpeak run with a JSON report; cmd nil runs it as root.
func (u vmUser) run(t *testing.T, asUser bool, args ...string) (Report, int, string) {
	t.Helper()
	out := filepath.Join(u.dir(t), "r.json")
	argv := append([]string{u.cgpeak, "run", "--json", "--output", out, "--"}, args...)
	c := exec.Command(argv[0], argv[1:]...)
	if asUser {
		c = u.cmd(nil, argv...)
	}
	var stderr strings.Builder
	c.Stderr = &stderr
	code := exitCode(c.Run())
	if code != 0 {
		return Report{}, code, stderr.String()
	}
	return readReport(t, out), code, stderr.String()
}

// leftovers lists cgpeak's units (the user's and the system's) and cgroup
// directories still there, waiting up to wait for systemd to collect empty
// scopes.
func (u vmUser) leftovers(t *testing.T, wait time.Duration) []string {
	t.Helper()
	var left []string
	for end := time.Now().Add(wait); ; {
		left = nil
		if b, err := u.cmd(nil, "systemctl", "--user", "list-units", "--all", "--no-legend", "--plain", "cgpeak*").Output(); err != nil {
			t.Fatalf("systemctl --user list-units: %v", err)
		} else if s := strings.TrimSpace(string(b)); s != "" {
			left = append(left, "user unit: "+s)
		}
		if b, err := exec.Command("systemctl", "list-units", "--all", "--no-legend", "--plain", "cgpeak*").Output(); err != nil {
			t.Fatalf("systemctl list-units: %v", err)
		} else if s := strings.TrimSpace(string(b)); s != "" {
			left = append(left, "system unit: "+s)
		}
		_ = filepath.WalkDir("/sys/fs/cgroup", func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() && strings.HasPrefix(d.Name(), "cgpeak-") {
				left = append(left, "cgroup: "+p)
				return filepath.SkipDir
			}
			return nil
		})
		if len(left) == 0 || time.Now().After(end) {
			return left
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (u vmUser) noLeftovers(t *testing.T) {
	t.Helper()
	if left := u.leftovers(t, 10*time.Second); len(left) > 0 {
		t.Errorf("left behind: %s", strings.Join(left, "; "))
	}
}

// slack is one charge batch per CPU.
func slack() uint64 {
	return kernel.ChargeBatch(kernel.Release()).Pages * uint64(runtime.NumCPU()) * uint64(os.Getpagesize())
}

// A normal user's run of a workload touching N pages gets its cgroup from a
// systemd user scope and reports the same peak, within a charge batch per
// CPU, as root's, whose cgroup comes from the system manager.
func TestUnprivilegedRunMatchesRoot(t *testing.T) {
	u := systemdVM(t)
	const n = 20000
	page := uint64(os.Getpagesize())
	user, code, stderr := u.run(t, true, u.touch, strconv.Itoa(n))
	if code != 0 || user.PeakBytes == nil {
		t.Fatalf("as %s: exit %d, peak %v: %s", u.name, code, user.PeakBytes, stderr)
	}
	root, code, stderr := u.run(t, false, u.touch, strconv.Itoa(n))
	if code != 0 || root.PeakBytes == nil {
		t.Fatalf("as root: exit %d, peak %v: %s", code, root.PeakBytes, stderr)
	}
	t.Logf("%d pages: user peak %d (%s, cgroup from %s), root peak %d (cgroup from %s)", n, *user.PeakBytes, user.PeakSource, user.CgroupFrom, *root.PeakBytes, root.CgroupFrom)
	if !strings.HasPrefix(user.CgroupFrom, "systemd user scope cgpeak-") || !strings.Contains(user.Cgroup, fmt.Sprintf("/user@%d.service/", u.uid)) {
		t.Errorf("user run: cgroup %s from %q, want a systemd user scope under user@%d.service", user.Cgroup, user.CgroupFrom, u.uid)
	}
	if !strings.HasPrefix(root.CgroupFrom, "systemd system scope cgpeak-") || !strings.Contains(root.Cgroup, "/system.slice/cgpeak-") {
		t.Errorf("root run: cgroup %s from %q, want a systemd system scope in system.slice", root.Cgroup, root.CgroupFrom)
	}
	for who, r := range map[string]Report{"user": user, "root": root} {
		if *r.PeakBytes < n*page || *r.PeakBytes > n*page+slack()+64*page {
			t.Errorf("%s: peak %d outside [%d, %d]", who, *r.PeakBytes, n*page, n*page+slack()+64*page)
		}
	}
	d := int64(*user.PeakBytes) - int64(*root.PeakBytes)
	if d < 0 {
		d = -d
	}
	if uint64(d) > slack() {
		t.Errorf("user and root peaks differ by %d bytes, more than a charge batch per CPU (%d)", d, slack())
	}
	u.noLeftovers(t)
}

// A series of runs of two commands as the user, each run in a fresh leaf of
// the one scope.
func TestUnprivilegedSeries(t *testing.T) {
	u := systemdVM(t)
	out := filepath.Join(u.dir(t), "s.json")
	c := u.cmd(nil, u.cgpeak, "run", "--runs", "5", "--export-json", out, u.touch+" 1000", u.touch+" 5000")
	// A series prints its results on stdout, as hyperfine does.
	var stdout, stderr strings.Builder
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		t.Fatalf("series: %v: %s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "cgroup from: systemd user scope cgpeak-") {
		t.Errorf("the text report does not say where the cgroup came from:\n%s", stdout.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep SeriesReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("want 2 results, got %d", len(rep.Results))
	}
	page := uint64(os.Getpagesize())
	leaves := map[string]bool{}
	for i, n := range []uint64{1000, 5000} {
		res := rep.Results[i]
		if len(res.Each) != 5 {
			t.Fatalf("%s: %d runs, want 5", res.Command, len(res.Each))
		}
		for _, r := range res.Each {
			leaves[r.Cgroup] = true
			if r.PeakBytes == nil || *r.PeakBytes < n*page || *r.PeakBytes > n*page+slack()+128*page {
				t.Errorf("%s: peak %v outside [%d, %d]", res.Command, r.PeakBytes, n*page, n*page+slack()+128*page)
			}
			if !strings.HasPrefix(r.CgroupFrom, "systemd user scope ") {
				t.Errorf("%s: cgroup from %q", res.Command, r.CgroupFrom)
			}
		}
	}
	if len(leaves) != 10 {
		t.Errorf("10 runs used %d distinct cgroups", len(leaves))
	}
	u.noLeftovers(t)
}

// cgpeak watch as the user follows the user's own run, which raises its
// usage in steps, and ends when the run's leaf goes.
func TestUnprivilegedWatch(t *testing.T) {
	u := systemdVM(t)
	run := u.cmd(nil, "env", "TOUCH_STEPS=4", "TOUCH_PAUSE_MS=1500", u.cgpeak, "run", "-q", "--", u.touch, "4000")
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	defer run.Process.Kill()
	pid := ""
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end) && pid == ""; {
		b, _ := exec.Command("pgrep", "-u", u.name, "-x", filepath.Base(u.touch)).Output()
		pid = strings.TrimSpace(string(b))
		time.Sleep(50 * time.Millisecond)
	}
	if pid == "" {
		t.Fatal("the workload did not start")
	}
	w := u.cmd(nil, u.cgpeak, "watch", "--pid", pid, "--interval", "100ms", "--json")
	out, _ := w.StdoutPipe()
	var stderr strings.Builder
	w.Stderr = &stderr
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	var maxCur uint64
	samples := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var s WatchSample
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			continue // the closing line
		}
		samples++
		maxCur = max(maxCur, s.UsageBytes)
	}
	if err := w.Wait(); err != nil {
		t.Errorf("watch: %v: %s", err, stderr.String())
	}
	if err := run.Wait(); err != nil {
		t.Errorf("run: %v", err)
	}
	page := uint64(os.Getpagesize())
	t.Logf("%d samples, highest memory.current %d", samples, maxCur)
	if samples < 3 || maxCur < 3000*page {
		t.Errorf("watch saw %d samples, highest %d bytes; want the steps up to 4000 pages (%d)", samples, maxCur, 4000*page)
	}
	u.noLeftovers(t)
}

// SIGKILL leaves the scope with the workload running; the next run stops it.
// SIGTERM and Ctrl-C clean up at once.
func TestUnprivilegedKilled(t *testing.T) {
	u := systemdVM(t)
	for _, sig := range []string{"KILL", "TERM", "INT"} {
		run := u.cmd(nil, u.cgpeak, "run", "-q", "--", "sleep", "300")
		if err := run.Start(); err != nil {
			t.Fatal(err)
		}
		var cgpeakPid, sleepPid string
		for end := time.Now().Add(30 * time.Second); time.Now().Before(end) && (cgpeakPid == "" || sleepPid == ""); {
			b, _ := exec.Command("pgrep", "-u", u.name, "-x", "cgpeak").Output()
			cgpeakPid = strings.TrimSpace(string(b))
			b, _ = exec.Command("pgrep", "-u", u.name, "-x", "sleep").Output()
			sleepPid = strings.TrimSpace(string(b))
			time.Sleep(50 * time.Millisecond)
		}
		if cgpeakPid == "" || sleepPid == "" {
			t.Fatalf("cgpeak %q, workload %q did not start", cgpeakPid, sleepPid)
		}
		if out, err := exec.Command("kill", "-"+sig, cgpeakPid).CombinedOutput(); err != nil {
			t.Fatalf("kill: %v %s", err, out)
		}
		_ = run.Wait()
		if sig == "KILL" {
			if left := u.leftovers(t, 0); len(left) == 0 {
				t.Errorf("after SIGKILL nothing was left: the test did not kill cgpeak mid-run")
			}
			if _, code, stderr := u.run(t, true, "true"); code != 0 {
				t.Fatalf("the next run: exit %d: %s", code, stderr)
			}
		}
		u.noLeftovers(t)
		if _, err := os.Stat("/proc/" + sleepPid); err == nil {
			t.Errorf("SIG%s: the workload (pid %s) still runs", sig, sleepPid)
			_ = exec.Command("kill", "-KILL", sleepPid).Run()
		}
	}
}

// Eight runs at once, each in its own scope, each measuring its own pages.
func TestUnprivilegedParallel(t *testing.T) {
	u := systemdVM(t)
	const runs, n = 8, 3000
	page := uint64(os.Getpagesize())
	var wg sync.WaitGroup
	reps := make([]Report, runs)
	errs := make([]string, runs)
	for i := 0; i < runs; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r, code, stderr := u.run(t, true, u.touch, strconv.Itoa(n))
			if code != 0 {
				errs[i] = fmt.Sprintf("exit %d: %s", code, stderr)
			}
			reps[i] = r
		}(i)
	}
	wg.Wait()
	scopes := map[string]bool{}
	for i, r := range reps {
		if errs[i] != "" {
			t.Errorf("run %d: %s", i, errs[i])
			continue
		}
		scopes[r.CgroupFrom] = true
		if r.PeakBytes == nil || *r.PeakBytes < n*page || *r.PeakBytes > n*page+slack()+64*page {
			t.Errorf("run %d: peak %v outside [%d, %d]", i, r.PeakBytes, n*page, n*page+slack()+64*page)
		}
	}
	if len(scopes) != runs {
		t.Errorf("%d runs used %d scopes: %v", runs, len(scopes), scopes)
	}
	u.noLeftovers(t)
}

// Inside a scope delegated to the user and without the bus variables,
// cgpeak uses the delegated subtree; with neither, it says how to get one.
func TestUnprivilegedDelegatedAndNoBus(t *testing.T) {
	u := systemdVM(t)
	out := filepath.Join(u.dir(t), "r.json")
	noBus := []string{"DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR"}
	c := u.cmd(nil, "systemd-run", "--user", "--scope", "--quiet", "-p", "Delegate=yes", "--",
		"env", "-u", noBus[0], "-u", noBus[1], u.cgpeak, "run", "--json", "--output", out, "--", u.touch, "2000")
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("in a delegated scope: %v: %s", err, b)
	}
	r := readReport(t, out)
	page := uint64(os.Getpagesize())
	if r.PeakBytes != nil {
		t.Logf("cgroup %s from %s, peak %d", r.Cgroup, r.CgroupFrom, *r.PeakBytes)
	}
	if !strings.HasPrefix(r.CgroupFrom, "delegated subtree ") {
		t.Errorf("cgroup from %q, want the delegated subtree", r.CgroupFrom)
	}
	if r.PeakBytes == nil || *r.PeakBytes < 2000*page || *r.PeakBytes > 2000*page+slack()+64*page {
		t.Errorf("peak %v outside [%d, %d]", r.PeakBytes, 2000*page, 2000*page+slack()+64*page)
	}
	u.noLeftovers(t)

	c = u.cmd(noBus, u.cgpeak, "run", "--", "true")
	var stderr strings.Builder
	c.Stderr = &stderr
	code := exitCode(c.Run())
	msg := strings.TrimSpace(stderr.String())
	if code != exitCgroup || strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "loginctl enable-linger") {
		t.Errorf("no bus, no delegation: exit %d, %q; want exit %d and one line naming loginctl enable-linger", code, msg, exitCgroup)
	}
	u.noLeftovers(t)
}

// Under sudo the command runs as the user who ran sudo (uid, gid,
// supplementary groups, HOME), traced or not; --user root keeps root; a
// normal user's --trace is refused in one line naming sudo.
func TestSudoRunsTheCommandAsItsUser(t *testing.T) {
	u := systemdVM(t)
	// A supplementary group, so that dropping them is seen.
	_ = exec.Command("groupadd", "cgpeaktest").Run()
	if out, err := exec.Command("usermod", "-aG", "cgpeaktest", u.name).CombinedOutput(); err != nil {
		t.Fatalf("usermod: %v %s", err, out)
	}
	want := func(args ...string) string {
		b, err := exec.Command("id", append(args, u.name)...).Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	truth := strings.Join([]string{want("-u"), want("-g"), want("-G"), "/home/" + u.name}, "\n")
	if !strings.Contains(want("-G"), " ") {
		t.Fatalf("the user has no supplementary group: id -G %s", want("-G"))
	}
	probe := `id -u; id -g; id -G; echo "$HOME"`
	sudoEnv := append(os.Environ(), fmt.Sprintf("SUDO_UID=%d", u.uid), "SUDO_GID=1000", "SUDO_USER="+u.name)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"sudo", []string{"run", "-q", "--", "sh", "-c", probe}, truth},
		{"sudo --trace", []string{"run", "-q", "--trace", "--", "sh", "-c", probe}, truth},
		{"sudo --user root", []string{"run", "-q", "--user", "root", "--", "sh", "-c", probe}, "0\n0\n0\n/root"},
	} {
		c := exec.Command(u.cgpeak, tc.args...)
		c.Env = sudoEnv
		var stderr strings.Builder
		c.Stderr = &stderr
		out, err := c.Output()
		if err != nil {
			t.Errorf("%s: %v: %s", tc.name, err, stderr.String())
			continue
		}
		if got := strings.TrimSpace(string(out)); got != tc.want {
			t.Errorf("%s: the command saw\n%s\nwant\n%s", tc.name, got, tc.want)
		}
	}
	c := exec.Command(u.cgpeak, "run", "--json", "--trace", "--", u.touch, "2000")
	c.Env = sudoEnv
	b, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("sudo --trace: %v %s", err, b)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("report: %v\n%s", err, b)
	}
	if r.Trace == nil || !strings.HasPrefix(r.RanAs, u.name+" (uid 1000") {
		t.Errorf("sudo --trace: trace %v, ran as %q", r.Trace != nil, r.RanAs)
	}

	c = u.cmd(nil, u.cgpeak, "run", "--trace", "--", "true")
	var stderr strings.Builder
	c.Stderr = &stderr
	code := exitCode(c.Run())
	msg := strings.TrimSpace(stderr.String())
	if code != exitTrace || strings.Contains(msg, "\n") || !strings.Contains(msg, "sudo") {
		t.Errorf("a normal user's --trace: exit %d, %q; want exit %d and one line naming sudo", code, msg, exitTrace)
	}
	u.noLeftovers(t)
}
