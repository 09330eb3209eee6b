package loader

import (
	"golang.org/x/sys/unix"
)

// ringBytes sizes the ring buffer the programs write events to. The kernel
// allocates all of it when the map is created (and charges it to cgpeak's
// own cgroup, not the workload's), so what it can hold is reserved up
// front; an event that finds it full is dropped and counted (lost). It must
// hold what the workload emits while the reader cannot run: under memory
// pressure the reader itself waits in reclaim, for tens of milliseconds at
// a time, while every CPU keeps faulting. Per-charge mode emits an event of
// about 120 bytes per charge request (a page fault), so its ring holds half
// a million events, 2 GiB of faults at 4 KiB; the summary modes emit a few
// events per batch, a sixty-fourth as many. Neither takes more than a
// sixteenth of the machine's memory.
func ringBytes(m mode) uint32 {
	want := uint64(64 << 20)
	if m != modeCharges {
		want = 16 << 20
	}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		limit := uint64(si.Totalram) * uint64(si.Unit) / 16
		for want > 4<<20 && want > limit {
			want /= 2
		}
	}
	return uint32(want) // a power of two, as the kernel requires
}
