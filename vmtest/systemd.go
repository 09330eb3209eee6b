package vmtest

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// The systemd guest: the cached root file system, then a small uncompressed
// cpio on top (the kernel unpacks concatenated archives in order) with the
// program, its files, /init pointing at systemd, and a unit that runs the
// program once the lingering user's manager is up.

// systemdBoot is how long the systemd guest may take to reach the program:
// about 15 s under TCG alone, more on a busy host.
const systemdBoot = 240

func systemdRunScript(cfg Config, program string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `#!/bin/sh
export PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
for t in ttyS1 ttyS2 ttyS3; do stty -F /dev/$t raw -echo 2>/dev/null; done
# The user manager and its bus must be up before the tests start.
i=0
until [ "$(systemctl is-active user@%[1]d.service)" = active ] && [ -S /run/user/%[1]d/bus ]; do
	i=$((i+1)); [ $i -gt 600 ] && { echo "vmtest: user@%[1]d.service never came up" > /dev/ttyS0; break; }
	sleep 0.2
done
`, SystemdUID)
	runProgram(&b, cfg, program, "CGPEAK_VM_USER="+SystemdUser, fmt.Sprintf("CGPEAK_VM_UID=%d", SystemdUID))
	b.WriteString("sleep 0.2\nsystemctl poweroff --force --force\n")
	return b.String()
}

const systemdUnit = `[Unit]
Description=cgpeak vmtest program
After=multi-user.target user@1000.service
Wants=user@1000.service

[Service]
Type=oneshot
ExecStart=/vmtest/run.sh
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
`

func writeSystemdInitramfs(dst, rootfs string, cfg Config) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	src, err := os.Open(rootfs)
	if err != nil {
		return fmt.Errorf("the systemd image: %w", err)
	}
	n, err := io.Copy(f, src)
	src.Close()
	if err != nil {
		return err
	}
	// The kernel looks for the next archive's header on a 4-byte boundary.
	if pad := (4 - n%4) % 4; pad > 0 {
		if _, err := f.Write(make([]byte, pad)); err != nil {
			return err
		}
	}
	c := newCPIO(f)
	for _, d := range []string{"/usr/local/bin", "/etc/systemd/system/multi-user.target.wants", "/vmtest"} {
		c.mkdirAll(d)
	}
	program, err := shipProgram(c, cfg)
	if err != nil {
		return err
	}
	c.file("/vmtest/run.sh", 0o755, []byte(systemdRunScript(cfg, program)))
	c.file("/etc/systemd/system/vmtest.service", 0o644, []byte(systemdUnit))
	c.symlink("/etc/systemd/system/multi-user.target.wants/vmtest.service", "/etc/systemd/system/vmtest.service")
	c.symlink("/init", "/lib/systemd/systemd")
	return c.close()
}
