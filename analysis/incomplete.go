package analysis

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Incomplete says why a trace is not a full record of the charges, from
// the tracer's counts of lost events and missed calls and the replay's
// resyncs; nil when it is.
func Incomplete(lost uint64, missed map[string]uint64, t Totals) []string {
	var why []string
	if lost > 0 {
		why = append(why, fmt.Sprintf("%d events were lost (ring buffer full)", lost))
	}
	var fns []string
	for fn, n := range missed {
		fns = append(fns, fmt.Sprintf("%s %d", fn, n))
	}
	sort.Strings(fns)
	if len(fns) > 0 {
		why = append(why, "the kernel skipped probes on traced functions (calls for any cgroup: "+strings.Join(fns, ", ")+")")
	}
	if t.Resyncs > 0 {
		why = append(why, fmt.Sprintf("the replay contradicted the kernel %s and followed it (%d pages of stock moved): the trace missed calls", times(t.Resyncs), t.ResyncPages))
	}
	return why
}

func times(n uint64) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}

// CgroupsByName keys each cgroup's totals by its directory where names
// (cgroup id -> directory) knows it, else by "id N".
func CgroupsByName(byID map[uint64]CgroupStats, names map[string]string) map[string]CgroupStats {
	out := map[string]CgroupStats{}
	for id, st := range byID {
		key := strconv.FormatUint(id, 10)
		if n, ok := names[key]; ok {
			key = n
		} else {
			key = "id " + key
		}
		out[key] = st
	}
	return out
}
