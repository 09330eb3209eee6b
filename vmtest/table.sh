#!/usr/bin/env bash
# The README's kernel table, from what the suite saw: each suite.sh run
# leaves DIR/KERNEL.MODE (a header line, then STATUS TEST per test) and this
# turns them into one markdown row per kernel and cgroup mode.
#   vmtest/table.sh DIR              print the table
#   vmtest/table.sh --check DIR FILE fail when FILE's table differs from it
set -uo pipefail
check=
if [ "${1:-}" = --check ]; then check=$3; shift; fi
dir=$1
table() {
	echo "| kernel | cgroup | cgroup peak | fentry | kprobe | tracepoint | kernel stacks of requests | watch |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
	for k in host bullseye bookworm trixie trixie-backports; do
		for m in v2 v1; do
			f=$dir/$k.$m
			[ -f "$f" ] || continue
			awk -v k="$k" -v m="$m" '
			NR == 1 { rel = $3; next }
			{ st[$2] = $1 }
			# every subtest of a backend passed: yes; any failed: FAILS; else no
			function backend(b,   n, s, name, bad) {
				n = 0; bad = 0
				for (name in st) if (name ~ "^TestSeedExperiment/" b "/") { n++; if (st[name] == "FAIL") bad = 1; if (st[name] == "PASS") s++ }
				if (bad) return "FAILS"
				return (n > 0 && s == n) ? "yes" : "no"
			}
			function yes(t) { return st[t] == "PASS" ? "yes" : (st[t] == "FAIL" ? "FAILS" : "no") }
			END {
				peak = "none"
				# Where memory.peak is missing the run reports the watermark,
				# and the peak test passes on it too.
				if (st["TestRunPeakWithoutPeakFile"] == "PASS") peak = "page_counter.watermark read by BPF"
				else if (st["TestRunTouchesNPages"] == "PASS") peak = (m == "v1" ? "memory.max_usage_in_bytes" : "memory.peak")
				else if (st["TestRunTouchesNPages"] == "FAIL" || st["TestRunPeakWithoutPeakFile"] == "FAIL") peak = "FAILS"
				if (st["TestRunNoPeakWithoutBPF"] == "PASS") peak = peak "; without BPF a sampled lower bound"
				printf "| %s (%s) | %s | %s | %s | %s | %s | %s | %s |\n", k, rel, m, peak, backend("fentry"), backend("kprobe"), yes("TestTracepointBackend"), yes("TestStackPerPathAgreesWithEveryWalk"), yes("TestWatchFollowsSteps")
			}' "$f"
		done
	done
}
if [ -z "$check" ]; then
	table
	exit
fi
# The releases in parentheses are left out of the comparison: Debian's
# security updates move them (6.1.0-50 -> 6.1.0-51) and each machine's host
# kernel has its own build suffix, neither of which is a change in what
# cgpeak can do there. `make kernel-table` writes them in.
norm() { sed 's/^| \([a-z-]*\) ([^)]*)/| \1/'; }
want=$(table | norm)
got=$(sed -n '/<!-- kernel table: begin/,/<!-- kernel table: end/p' "$check" | grep '^|' | norm)
if [ "$want" != "$got" ]; then
	echo "kernel table: $check differs from what the suite saw in $dir:" >&2
	diff <(echo "$got") <(echo "$want") >&2
	exit 1
fi
echo "kernel table: $check matches what the suite saw"
