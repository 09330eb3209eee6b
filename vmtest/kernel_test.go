package vmtest

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

func TestMirrorFrom(t *testing.T) {
	deb822 := "Types: deb\n# http://snapshot.debian.org/archive/debian/2025\nURIs: http://mirror.example/debian\nSuites: bookworm\n"
	oneLine := "deb http://security.debian.org/debian-security bookworm-security main\ndeb https://m.example.org/debian/ bookworm main\n"
	for _, c := range []struct {
		texts []string
		want  string
	}{
		{[]string{deb822}, "http://mirror.example/debian"},
		{[]string{oneLine}, "https://m.example.org/debian"},
		{[]string{"deb https://packages.cloud.google.com/apt cloud-sdk main\n", deb822}, "http://mirror.example/debian"},
		{[]string{"# deb http://commented.example/debian x main\n"}, ""},
	} {
		if got := mirrorFrom(c.texts); got != c.want {
			t.Errorf("mirrorFrom(%q) = %q, want %q", c.texts, got, c.want)
		}
	}
}

func TestDependsOn(t *testing.T) {
	meta := []byte("Package: linux-image-cloud-amd64\nVersion: 7.3.4-1~bpo13+1\nDepends: linux-base-cloud-amd64 (= 7.3.4-1~bpo13+1), linux-image-7.3.4+deb13-cloud-amd64 (= 7.3.4-1~bpo13+1), linux-modules-cloud-amd64\n\nPackage: linux-image-cloud-amd64\nDepends: linux-image-6.12.9+deb13-cloud-amd64\n")
	if got := dependsOn(meta, imageRe); got != "linux-image-7.3.4+deb13-cloud-amd64" {
		t.Errorf("image: %q", got)
	}
	img := []byte("Package: linux-image-7.3.4+deb13-cloud-amd64\nDepends: dracut | initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool, linux-base-7.3.4+deb13-cloud-amd64 (= 7.3.4-1), linux-binary-7.3.4+deb13-cloud-amd64 (= 7.3.4-1)\n")
	if got := dependsOn(img, binaryRe); got != "linux-binary-7.3.4+deb13-cloud-amd64" {
		t.Errorf("binary: %q", got)
	}
	if got := dependsOn(img, baseRe); got != "linux-base-7.3.4+deb13-cloud-amd64" {
		t.Errorf("base: %q", got)
	}
	if got := dependsOn([]byte("Depends: foo\n"), regexp.MustCompile("^bar$")); got != "" {
		t.Errorf("no match: %q", got)
	}
}

func synthBzImage(version string) []byte {
	b := make([]byte, 0x600)
	copy(b[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(b[0x20e:], 0x300)
	copy(b[0x500:], version+"\x00")
	return b
}

func TestBzImageRelease(t *testing.T) {
	got, err := bzImageRelease(synthBzImage("6.1.0-50-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP"))
	if err != nil || got != "6.1.0-50-cloud-amd64" {
		t.Errorf("got %q, %v", got, err)
	}
	if _, err := bzImageRelease(make([]byte, 0x600)); err == nil {
		t.Error("no header accepted")
	}
	bad := synthBzImage("x")
	binary.LittleEndian.PutUint16(bad[0x20e:], 0xffff)
	if _, err := bzImageRelease(bad); err == nil {
		t.Error("out-of-range offset accepted")
	}
}

func TestKernelFromPathAndConfig(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "vmlinuz-x")
	os.WriteFile(p, synthBzImage("7.3.4+deb13-cloud-amd64 #1"), 0o644)
	os.WriteFile(filepath.Join(dir, "config-7.3.4+deb13-cloud-amd64"), []byte("CONFIG_KPROBES=y\n# CONFIG_MEMCG_V1 is not set\nCONFIG_LOCALVERSION=\"\"\nCONFIG_X=m\n"), 0o644)
	k, err := ResolveKernel(context.Background(), p, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if k.Release != "7.3.4+deb13-cloud-amd64" || k.Vmlinuz != p || k.Config == "" {
		t.Fatalf("%+v", k)
	}
	for opt, want := range map[string]string{"CONFIG_KPROBES": "y", "CONFIG_X": "m", "CONFIG_MEMCG_V1": "", "CONFIG_LOCALVERSION": ""} {
		if v, known := k.HasConfig(opt); !known || v != want {
			t.Errorf("%s = %q (known %v), want %q", opt, v, known, want)
		}
	}
	if err := k.SupportsMode(ModeV1); err == nil {
		t.Error("v1 mode accepted on a kernel without CONFIG_MEMCG_V1")
	}
	if err := k.SupportsMode(ModeV2); err != nil {
		t.Error(err)
	}
	if _, err := ResolveKernel(context.Background(), filepath.Join(dir, "missing"), dir, nil); err == nil {
		t.Error("a missing path resolved")
	}
}

// The suites really resolve (through the cache once fetched) to bootable images.
func TestResolveRequiredSuites(t *testing.T) {
	dir, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range RequiredSuites {
		k, err := ResolveKernel(context.Background(), s, dir, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(k.Vmlinuz)
		if err != nil {
			t.Fatal(err)
		}
		rel, err := bzImageRelease(b)
		if err != nil || rel != k.Release {
			t.Errorf("%s: image says %q (%v), resolved %q", s, rel, err, k.Release)
		}
		if v, known := k.HasConfig("CONFIG_DEBUG_INFO_BTF"); !known || v != "y" {
			t.Errorf("%s: CONFIG_DEBUG_INFO_BTF=%q known=%v", s, v, known)
		}
	}
}
