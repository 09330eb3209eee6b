package vmtest

import (
	"os"
	"path/filepath"

	"github.com/cgpeak/cgpeak/internal/kernel"
)

// autoAccel prefers KVM where /dev/kvm opens and no earlier run on this host
// kernel found it broken (some hosts expose a /dev/kvm that cannot boot a guest).
func autoAccel() string {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return "tcg"
	}
	f.Close()
	if p := kvmBrokenFile(); p != "" {
		if _, err := os.Stat(p); err == nil {
			return "tcg"
		}
	}
	return "kvm"
}

func rememberKVMBroken() {
	if p := kvmBrokenFile(); p != "" {
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		_ = os.WriteFile(p, []byte("kvm could not boot a guest on this host kernel\n"), 0o644)
	}
}

func kvmBrokenFile() string {
	dir, err := CacheDir()
	if err != nil {
		return ""
	}
	rel := kernel.Release()
	if rel == "" {
		return ""
	}
	return filepath.Join(dir, "kvm-broken-"+rel)
}
