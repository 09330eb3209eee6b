package vmtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ModeSystemd boots a Debian root file system with systemd as PID 1 (cgroup
// v2, memory delegated to users by systemd), with a lingering user of uid
// 1000 whose user manager is up before the program starts. The program runs
// as root from a system unit; it reaches the user with runuser (UserEnv).
const ModeSystemd = "systemd"

// SystemdUser is the lingering user of the systemd image.
const (
	SystemdUser = "u"
	SystemdUID  = 1000
)

// systemdPackages are installed on top of mmdebstrap's minbase: systemd as
// init, the system and user buses, logind for lingering users, and python3
// for the README's first command.
var systemdPackages = []string{"systemd", "systemd-sysv", "dbus", "dbus-user-session", "libpam-systemd", "procps", "python3-minimal"}

// rootfsName names the cached image; bump it when the recipe changes.
const rootfsName = "rootfs-bookworm-systemd-v2.cpio.gz"

// SystemdRootfs returns the cached systemd image, building it with mmdebstrap
// from the machine's Debian mirror when missing (about 20 s and 60 MB).
func SystemdRootfs(ctx context.Context, cacheDir string, logf func(string, ...any)) (string, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	dst := filepath.Join(cacheDir, "rootfs", rootfsName)
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return "", fmt.Errorf("building the systemd image: mmdebstrap not found (apt-get install mmdebstrap)")
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dst), "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "root")
	logf("vmtest: building the systemd image (mmdebstrap bookworm) into %s", dst)
	// The hooks make the lingering user and trim what a test VM never reads,
	// so the image (unpacked into guest RAM) stays small.
	hooks := []string{
		`chroot "$1" useradd -m -u 1000 -s /bin/sh ` + SystemdUser,
		`mkdir -p "$1/var/lib/systemd/linger" && touch "$1/var/lib/systemd/linger/` + SystemdUser + `"`,
		`rm -rf "$1/usr/share/doc" "$1/usr/share/man" "$1/usr/share/locale" "$1/usr/share/info" "$1/var/cache/apt" "$1/var/lib/apt/lists"`,
		`echo cgpeak-vm > "$1/etc/hostname"`,
		// No getty fights the tests for the serial consoles.
		`chroot "$1" systemctl mask serial-getty@ttyS0.service serial-getty@ttyS1.service serial-getty@ttyS2.service serial-getty@ttyS3.service getty@tty1.service`,
	}
	args := []string{"--variant=minbase", "--include=" + strings.Join(systemdPackages, ","), "--quiet"}
	for _, h := range hooks {
		args = append(args, "--customize-hook="+h)
	}
	args = append(args, "bookworm", dir, debianMirror())
	cmd := exec.CommandContext(ctx, "mmdebstrap", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("mmdebstrap: %w: %s", err, lastLine(string(out)))
	}
	part := filepath.Join(tmp, "rootfs.cpio.gz")
	pack := exec.CommandContext(ctx, "sh", "-c", `cd "$1" && find . -path './dev/*' -prune -o -print | LC_ALL=C sort | cpio --quiet -o -H newc | gzip -1 > "$2"`, "sh", dir, part)
	if out, err := pack.CombinedOutput(); err != nil {
		return "", fmt.Errorf("packing the systemd image: %w: %s", err, lastLine(string(out)))
	}
	if err := os.Rename(part, dst); err != nil {
		return "", err
	}
	return dst, nil
}
