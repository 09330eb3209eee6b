#!/usr/bin/env bash
# The VM suite on one kernel: for each cgroup mode, one boot that runs every
# package's test binary (built once, by `make vmtests`, into bin/vmtests),
# then one line of counts, so CI shows per kernel what ran, passed and
# skipped. Each mode leaves, for the README's kernel table (vmtest/table.sh)
# and CI's closing table, DIR/KERNEL.MODE (STATUS TEST per test) and
# DIR/KERNEL.MODE.summary (one line of counts and seconds).
#   vmtest/suite.sh KERNEL "v2 v1" PKG... [-run REGEXP]
set -uo pipefail
kernel=$1 modes=$2
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
vmtest=$root/bin/vmtest guest=$root/bin/guest tests=$root/bin/vmtests
results=${CGPEAK_SUITE_RESULTS:-$root/bin/suite-results}
mkdir -p "$results"
pkgs=() flags=()
while [ $# -gt 0 ]; do
	case $1 in
	-run) flags+=("-test.run=$2"); shift 2 ;;
	-*) echo "vm suite: unknown flag $1" >&2; exit 2 ;;
	*) pkgs+=("$1"); shift ;;
	esac
done
# Each package's binary goes to its directory under /src, beside the
# testdata it reads, as go test runs it in the package's own directory.
ship=() run=()
while read -r imp dir; do
	rel=${dir#"$root"/}
	bin=$tests/${imp##*/}.test
	[ -x "$bin" ] || { echo "vm suite: $bin missing: run make vmtests" >&2; exit 2; }
	ship+=(--file "$bin:/src/$rel/${imp##*/}.test")
	[ -d "$dir/testdata" ] && ship+=(--file "$dir/testdata:/src/$rel/testdata")
	run+=("$imp=/src/$rel/${imp##*/}.test")
done < <(cd "$root" && go list -f '{{.ImportPath}} {{.Dir}}' "${pkgs[@]}")
[ -d "$root/testdata" ] && ship+=(--file "$root/testdata:/src/testdata")
release=$("$vmtest" fetch "$kernel" | cut -f2) || { echo "vm suite: $kernel: INFRASTRUCTURE FAILURE: no kernel" >&2; exit 4; }
status=0
for mode in $modes; do
	if ! why=$("$vmtest" supports "$kernel" "$mode"); then
		echo "vm suite: $kernel ($release) cgroup $mode: not run: $why"
		echo "$kernel $release $mode not-run 0 0 0 0 0" >"$results/$kernel.$mode.summary"
		continue
	fi
	log=$(mktemp /tmp/cgpeak-vmtest-$kernel-$mode-XXXXXX.log)
	echo "=== vm suite: $kernel ($release), cgroup $mode: ${#run[@]} packages in one boot"
	start=$SECONDS
	(cd / && "$vmtest" -q --kernel "$kernel" --mode "$mode" --timeout 60m --bin "$guest" \
		--env CGPEAK_TEST_CGPEAK=/usr/local/bin/cgpeak --env CGPEAK_TEST_TOUCH=/usr/local/bin/touchpages \
		"${ship[@]}" \
		"$root/vmtest/packages.sh" "${run[@]}" -- -test.timeout=45m "${flags[@]}") >"$log" 2>&1
	rc=$?
	grep -E '^(\s*--- (PASS|FAIL|SKIP)|ok |FAIL|PASS$|panic:|vmtest:|--- console|\s+\S+_test\.go:)' "$log"
	pass=$(grep -cE '^\s*--- PASS' "$log") fail=$(grep -cE '^\s*--- FAIL' "$log") skip=$(grep -cE '^\s*--- SKIP' "$log")
	infra=$(grep -c 'INFRASTRUCTURE FAILURE' "$log")
	{
		echo "# $kernel $release $mode"
		grep -E '^\s*--- (PASS|FAIL|SKIP)' "$log" | awk '{ sub(":", "", $2); print $2, $3 }'
	} >"$results/$kernel.$mode"
	took=$((SECONDS - start))
	state=ok
	[ $rc -eq 0 ] || state=failed
	[ "$infra" -gt 0 ] && state=infra
	echo "$kernel $release $mode $state $((pass + fail + skip)) $pass $fail $skip $took" >"$results/$kernel.$mode.summary"
	echo "vm suite: $kernel ($release) cgroup $mode: $((pass + fail + skip)) tests ran: $pass passed, $fail failed, $skip skipped; $infra infrastructure failures; $took s; log $log"
	if [ "$infra" -gt 0 ]; then
		echo "vm suite: $kernel cgroup $mode: the VM failed to boot: an infrastructure failure, not a test result (console above)"
	fi
	[ $rc -eq 0 ] || status=1
done
exit $status
