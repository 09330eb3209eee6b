// Package kernel holds the rules that depend on the running kernel's
// version, so that each is written once: the release, and what memory
// cgroups do differently from one version to the next where the kernel
// itself does not tell (a #define leaves no trace in BTF).
package kernel

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Release is the running kernel's `uname -r`, "" if unknown.
func Release() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// Version is a release's major.minor.
type Version struct{ Major, Minor int }

// Parse reads the major and minor numbers of a release like
// "6.1.0-37-cloud-amd64" or "7.3.1+deb13-amd64"; ok is false when it has
// none.
func Parse(release string) (v Version, ok bool) {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return Version{}, false
	}
	maj, err1 := strconv.Atoi(parts[0])
	min, err2 := strconv.Atoi(digits(parts[1]))
	if err1 != nil || err2 != nil {
		return Version{}, false
	}
	return Version{maj, min}, true
}

func digits(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// AtLeast: v is major.minor or newer.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// AtLeast says whether a release is major.minor or newer; false when it
// cannot be read.
func AtLeast(release string, major, minor int) bool {
	v, ok := Parse(release)
	return ok && v.AtLeast(major, minor)
}

// Batch is MEMCG_CHARGE_BATCH: the pages a CPU charges the counter at once
// and keeps the surplus of in its stock. A #define no BTF records: 32 pages
// up to 6.0, 64 from 6.1 (commit 1813e51eece0).
type Batch struct {
	Pages  uint64
	Source string // where the figure comes from, in words
}

// ChargeBatch is MEMCG_CHARGE_BATCH for a release. An unreadable release
// gets the current value, said so in Source.
func ChargeBatch(release string) Batch {
	v, ok := Parse(release)
	switch {
	case !ok:
		return Batch{64, fmt.Sprintf("MEMCG_CHARGE_BATCH assumed 64: kernel release %q unreadable", release)}
	case v.AtLeast(6, 1):
		return Batch{64, "MEMCG_CHARGE_BATCH for Linux " + release + " (64 from 6.1)"}
	default:
		return Batch{32, "MEMCG_CHARGE_BATCH for Linux " + release + " (32 before 6.1)"}
	}
}

// Features that appeared in a known release, for probes that cannot ask the
// kernel directly (a file that exists only in a non-root cgroup).
var (
	PeakFile      = Version{5, 19} // cgroup v2 memory.peak
	PeakFileReset = Version{6, 12} // writing memory.peak resets a per-fd watermark
	// memory.stat flushed exactly on read (rstat); before, each CPU's
	// statistics were folded in only by batches.
	StatExact = Version{5, 13}
	// The v1 memory controller became a build option (CONFIG_MEMCG_V1),
	// which Debian's kernels from 6.12 leave out; before, it is always there.
	MemcgV1Optional = Version{6, 11}
	// A kprobe link's info counts the calls its kprobe missed.
	KprobeMissed = Version{6, 7}
)

// Since says whether a release has a feature that appeared in version f;
// false when the release cannot be read.
func Since(release string, f Version) bool { return AtLeast(release, f.Major, f.Minor) }
