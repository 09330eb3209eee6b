#!/usr/bin/env bash
# The VM suite on one kernel: each cgroup mode's go test run inside the VMs,
# then one line of counts, so CI shows per kernel what ran, passed and skipped.
#   vmtest/suite.sh KERNEL "v2 v1" PKG...
set -uo pipefail
kernel=$1 modes=$2
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
vmtest=$root/bin/vmtest guest=$root/bin/guest
# Each mode's test results, for the README's kernel table (vmtest/table.sh).
results=${CGPEAK_SUITE_RESULTS:-$root/bin/suite-results}
mkdir -p "$results"
release=$("$vmtest" fetch "$kernel" | cut -f2) || { echo "vm suite: $kernel: INFRASTRUCTURE FAILURE: no kernel" >&2; exit 4; }
status=0
for mode in $modes; do
	if ! why=$("$vmtest" supports "$kernel" "$mode"); then
		echo "vm suite: $kernel ($release) cgroup $mode: not run: $why"
		continue
	fi
	log=$(mktemp /tmp/cgpeak-vmtest-XXXXXX.log)
	exec_cmd="$vmtest -q --kernel $kernel --mode $mode --bin $guest --env CGPEAK_TEST_CGPEAK=/usr/local/bin/cgpeak --env CGPEAK_TEST_TOUCH=/usr/local/bin/touchpages"
	echo "=== vm suite: $kernel ($release), cgroup $mode"
	start=$SECONDS
	CGO_ENABLED=0 go test -count=1 -v -p 1 -timeout 40m -exec "$exec_cmd" "$@" >"$log" 2>&1
	rc=$?
	grep -E '^(\s*--- (PASS|FAIL|SKIP)|ok |FAIL|PASS$|panic:|vmtest:|--- console|\s+\S+_test\.go:)' "$log"
	pass=$(grep -cE '^\s*--- PASS' "$log") fail=$(grep -cE '^\s*--- FAIL' "$log") skip=$(grep -cE '^\s*--- SKIP' "$log")
	infra=$(grep -c 'INFRASTRUCTURE FAILURE' "$log")
	{
		echo "# $kernel $release $mode"
		grep -E '^\s*--- (PASS|FAIL|SKIP)' "$log" | awk '{ sub(":", "", $2); print $2, $3 }'
	} >"$results/$kernel.$mode"
	echo "vm suite: $kernel ($release) cgroup $mode: $((pass + fail + skip)) tests ran: $pass passed, $fail failed, $skip skipped; $infra infrastructure failures; $((SECONDS - start)) s; log $log"
	if [ "$infra" -gt 0 ]; then
		echo "vm suite: $kernel cgroup $mode: the VM failed to boot: an infrastructure failure, not a test result (console above)"
	fi
	[ $rc -eq 0 ] || status=1
done
exit $status
