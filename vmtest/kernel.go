package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cgpeak/cgpeak/internal/kernel"
)

// Kernel is a bootable kernel image.
type Kernel struct {
	Name    string // what was asked for: a suite ("bookworm") or a path
	Release string // uname -r, e.g. "6.1.0-37-cloud-amd64"; "" if unknown
	Vmlinuz string // absolute path of the bzImage
	Config  string // absolute path of its build config, "" if unknown
}

// RequiredSuites are the Debian suites every test run boots; OptionalSuites
// are known and fetched on request.
var (
	RequiredSuites = []string{"bullseye", "bookworm", "trixie", "trixie-backports"}
	OptionalSuites = []string{}
)

// CacheDir is $CGPEAK_VM_CACHE, else the user cache dir: never the repo, so
// a clean clone reuses kernels already downloaded.
func CacheDir() (string, error) {
	if d := os.Getenv("CGPEAK_VM_CACHE"); d != "" {
		return filepath.Abs(d)
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding a cache directory: %w (set CGPEAK_VM_CACHE)", err)
	}
	return filepath.Join(d, "cgpeak-vm"), nil
}

// HasConfig returns the value of a CONFIG_ option in the kernel's config;
// known is false when there is no config to read.
func (k Kernel) HasConfig(option string) (value string, known bool) {
	if k.Config == "" {
		return "", false
	}
	b, err := os.ReadFile(k.Config)
	if err != nil {
		return "", false
	}
	return configValue(b, option), true
}

func configValue(config []byte, option string) string {
	sc := bufio.NewScanner(bytes.NewReader(config))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && k == option {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

func isSuite(s string) bool {
	for _, x := range append(append([]string{}, RequiredSuites...), OptionalSuites...) {
		if x == s {
			return true
		}
	}
	return false
}

// ResolveKernel turns a suite name or a vmlinuz path into a Kernel,
// downloading and caching the suite's current cloud kernel as needed.
func ResolveKernel(ctx context.Context, spec, cacheDir string, logf func(format string, args ...any)) (Kernel, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if !isSuite(spec) {
		return kernelFromPath(spec)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return Kernel{}, fmt.Errorf("kernel cache: %w", err)
	}
	// Two go test -exec processes may resolve the same suite at once.
	lock, err := os.OpenFile(filepath.Join(cacheDir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return Kernel{}, fmt.Errorf("kernel cache lock: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return Kernel{}, fmt.Errorf("kernel cache lock: %w", err)
	}
	k, err := fetchSuite(ctx, spec, cacheDir, logf)
	if err == nil {
		return k, nil
	}
	// Offline, or the mirror is down: the kernel this suite last resolved to.
	if cached, cerr := cachedSuite(spec, cacheDir); cerr == nil {
		logf("vmtest: %v; using the cached %s kernel %s", err, spec, cached.Release)
		return cached, nil
	}
	return Kernel{}, fmt.Errorf("resolving the %s kernel: %w (needs Debian's mirror once; then it is cached in %s)", spec, err, cacheDir)
}

func kernelFromPath(p string) (Kernel, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return Kernel{}, err
	}
	b, err := os.ReadFile(abs)
	if err != nil {
		return Kernel{}, fmt.Errorf("kernel %q is neither a known suite (%s) nor a readable file: %w", p,
			strings.Join(append(append([]string{}, RequiredSuites...), OptionalSuites...), ", "), err)
	}
	rel, err := bzImageRelease(b)
	if err != nil {
		return Kernel{}, fmt.Errorf("kernel %s: %w", p, err)
	}
	k := Kernel{Name: p, Release: rel, Vmlinuz: abs}
	for _, c := range []string{filepath.Join(filepath.Dir(abs), "config-"+rel), filepath.Join(filepath.Dir(abs), "config")} {
		if _, err := os.Stat(c); err == nil {
			k.Config = c
			break
		}
	}
	return k, nil
}

// bzImageRelease reads the version string the x86 boot protocol points to
// from the setup header (kernel_version at 0x20e, an offset from 0x200).
func bzImageRelease(b []byte) (string, error) {
	if len(b) < 0x210 || string(b[0x202:0x206]) != "HdrS" {
		return "", errors.New("not a bzImage (no HdrS setup header)")
	}
	off := int(binary.LittleEndian.Uint16(b[0x20e:])) + 0x200
	if off >= len(b) {
		return "", errors.New("bzImage version offset out of range")
	}
	end := bytes.IndexByte(b[off:], 0)
	if end < 0 {
		return "", errors.New("bzImage version string not terminated")
	}
	f := strings.Fields(string(b[off : off+end]))
	if len(f) == 0 {
		return "", errors.New("empty bzImage version string")
	}
	return f[0], nil
}

func cachedSuite(suite, cacheDir string) (Kernel, error) {
	b, err := os.ReadFile(filepath.Join(cacheDir, "kernels", suite+".release"))
	if err != nil {
		return Kernel{}, err
	}
	return cachedRelease(suite, strings.TrimSpace(string(b)), cacheDir)
}

func cachedRelease(name, release, cacheDir string) (Kernel, error) {
	dir := filepath.Join(cacheDir, "kernels", release)
	k := Kernel{Name: name, Release: release, Vmlinuz: filepath.Join(dir, "vmlinuz")}
	if _, err := os.Stat(k.Vmlinuz); err != nil {
		return Kernel{}, err
	}
	if _, err := os.Stat(filepath.Join(dir, "config")); err == nil {
		k.Config = filepath.Join(dir, "config")
	}
	return k, nil
}

// apt runs apt-get or apt-cache against the private state under cacheDir,
// so the machine's own apt configuration is neither read for sources nor changed.
type apt struct{ dir string }

func (a apt) opts() []string {
	return []string{
		"-o", "Dir::Etc::SourceList=" + filepath.Join(a.dir, "sources.list"),
		"-o", "Dir::Etc::SourceParts=" + filepath.Join(a.dir, "sources.list.d"),
		"-o", "Dir::State::Lists=" + filepath.Join(a.dir, "lists"),
		"-o", "Dir::Cache=" + filepath.Join(a.dir, "cache"),
		"-o", "Dir::State::Status=/dev/null",
		"-o", "Debug::NoLocking=1",
		"-o", "Acquire::Languages=none",
		"-o", "APT::Sandbox::User=root",
		"-q",
	}
}

func (a apt) run(ctx context.Context, dir, tool string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, tool, append(a.opts(), args...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, lastLine(stderr.String()))
	}
	return out, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// ensureLists writes the private sources and refreshes the package lists
// when they are older than a day.
func (a apt) ensureLists(ctx context.Context, logf func(string, ...any)) error {
	for _, d := range []string{"sources.list.d", "lists/partial", "cache/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(a.dir, d), 0o755); err != nil {
			return err
		}
	}
	var b strings.Builder
	mirror := debianMirror()
	for _, s := range append(append([]string{}, RequiredSuites...), OptionalSuites...) {
		fmt.Fprintf(&b, "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n", mirror, s)
	}
	src := filepath.Join(a.dir, "sources.list")
	old, _ := os.ReadFile(src)
	stamp := filepath.Join(a.dir, "updated")
	st, err := os.Stat(stamp)
	if string(old) == b.String() && err == nil && time.Since(st.ModTime()) < 24*time.Hour {
		return nil
	}
	if err := os.WriteFile(src, []byte(b.String()), 0o644); err != nil {
		return err
	}
	logf("vmtest: refreshing Debian package lists from %s", mirror)
	if _, err := a.run(ctx, a.dir, "apt-get", "update"); err != nil {
		return err
	}
	return os.WriteFile(stamp, nil, 0o644)
}

// debianMirror is the machine's own Debian mirror, so a host behind a proxy
// or a local mirror keeps using it.
func debianMirror() string {
	var texts []string
	if b, err := os.ReadFile("/etc/apt/sources.list"); err == nil {
		texts = append(texts, string(b))
	}
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*")
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			texts = append(texts, string(b))
		}
	}
	if m := mirrorFrom(texts); m != "" {
		return m
	}
	return "http://deb.debian.org/debian"
}

var uriRe = regexp.MustCompile(`(https?://\S+/debian)/?(\s|$)`)

// mirrorFrom picks the first URI ending in /debian (the main archive, not
// debian-security) from one-line or deb822 sources.
func mirrorFrom(texts []string) string {
	for _, t := range texts {
		for _, line := range strings.Split(t, "\n") {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "#") {
				continue
			}
			if m := uriRe.FindStringSubmatch(line); m != nil {
				return m[1]
			}
		}
	}
	return ""
}

// dependsOn returns the first package in a Depends field whose name matches re.
func dependsOn(show []byte, re *regexp.Regexp) string {
	sc := bufio.NewScanner(bytes.NewReader(show))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break // first stanza only: the candidate version
		}
		if !strings.HasPrefix(line, "Depends:") {
			continue
		}
		for _, alt := range strings.Split(strings.TrimPrefix(line, "Depends:"), ",") {
			for _, p := range strings.Split(alt, "|") {
				name := strings.Fields(p)
				if len(name) > 0 && re.MatchString(name[0]) {
					return name[0]
				}
			}
		}
	}
	return ""
}

var (
	imageRe  = regexp.MustCompile(`^linux-image-(.+-cloud-amd64)$`)
	binaryRe = regexp.MustCompile(`^linux-binary-.+-cloud-amd64$`)
	baseRe   = regexp.MustCompile(`^linux-base-.+-cloud-amd64$`)
)

func fetchSuite(ctx context.Context, suite, cacheDir string, logf func(string, ...any)) (Kernel, error) {
	a := apt{dir: filepath.Join(cacheDir, "apt")}
	if err := a.ensureLists(ctx, logf); err != nil {
		return Kernel{}, err
	}
	meta, err := a.run(ctx, a.dir, "apt-cache", "show", "linux-image-cloud-amd64/"+suite)
	if err != nil {
		return Kernel{}, err
	}
	image := dependsOn(meta, imageRe)
	if image == "" {
		return Kernel{}, fmt.Errorf("linux-image-cloud-amd64/%s names no linux-image-*-cloud-amd64", suite)
	}
	release := imageRe.FindStringSubmatch(image)[1]
	if k, err := cachedRelease(suite, release, cacheDir); err == nil {
		return k, rememberSuite(suite, release, cacheDir)
	}
	// In 7.x the image package is a shell: vmlinuz is in linux-binary-* and
	// the config in linux-base-*.
	pkgs := []string{image}
	if show, err := a.run(ctx, a.dir, "apt-cache", "show", image+"/"+suite); err == nil {
		for _, re := range []*regexp.Regexp{binaryRe, baseRe} {
			if p := dependsOn(show, re); p != "" {
				pkgs = append(pkgs, p)
			}
		}
	}
	tmp, err := os.MkdirTemp(cacheDir, "download-")
	if err != nil {
		return Kernel{}, err
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "root")
	for _, p := range pkgs {
		logf("vmtest: downloading %s (%s)", p, suite)
		if _, err := a.run(ctx, tmp, "apt-get", "download", p+"/"+suite); err != nil {
			return Kernel{}, err
		}
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	for _, d := range debs {
		if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", d, root).CombinedOutput(); err != nil {
			return Kernel{}, fmt.Errorf("unpacking %s: %w: %s", filepath.Base(d), err, out)
		}
	}
	vmlinuz := firstExisting(filepath.Join(root, "boot", "vmlinuz-"+release), filepath.Join(root, "usr/lib/modules", release, "vmlinuz"))
	if vmlinuz == "" {
		return Kernel{}, fmt.Errorf("no vmlinuz for %s in %s", release, strings.Join(pkgs, ", "))
	}
	config := firstExisting(filepath.Join(root, "boot", "config-"+release), filepath.Join(root, "usr/lib/modules", release, "config"))
	dst := filepath.Join(cacheDir, "kernels", release)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return Kernel{}, err
	}
	if err := os.Rename(vmlinuz, filepath.Join(dst, "vmlinuz")); err != nil {
		return Kernel{}, err
	}
	if config != "" {
		_ = os.Rename(config, filepath.Join(dst, "config"))
	}
	k, err := cachedRelease(suite, release, cacheDir)
	if err != nil {
		return Kernel{}, err
	}
	return k, rememberSuite(suite, release, cacheDir)
}

func rememberSuite(suite, release, cacheDir string) error {
	return os.WriteFile(filepath.Join(cacheDir, "kernels", suite+".release"), []byte(release+"\n"), 0o644)
}

func firstExisting(paths ...string) string {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// SupportsMode says why a guest cgroup mode cannot exist on this kernel:
// the v1 memory controller may be built out (kernel.MemcgV1Optional), which
// the kernel's config says.
func (k Kernel) SupportsMode(mode string) error {
	if mode != ModeV1 {
		return nil
	}
	if _, ok := kernel.Parse(k.Release); ok && !kernel.Since(k.Release, kernel.MemcgV1Optional) {
		return nil // always built in then
	}
	b, err := os.ReadFile(k.Config)
	if k.Config == "" || err != nil {
		return nil // unknown: let the guest try
	}
	if bytes.Contains(b, []byte("\n# CONFIG_MEMCG_V1 is not set\n")) {
		return fmt.Errorf("kernel %s is built without CONFIG_MEMCG_V1: the v1 memory controller does not exist there", k.Release)
	}
	return nil
}
