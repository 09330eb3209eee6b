#!/usr/bin/env bash
# The whole VM suite, JOBS VMs at a time (default 2: one per core of a
# 2-core CI machine), the longest first so that the two queues end together.
# Each job is one kernel and cgroup mode (vmtest/suite.sh: one boot for all
# packages), or the systemd VM; each job's output is kept apart and printed
# whole when it ends, and its results land in the suite results directory
# for the kernel table.
#   vmtest/all.sh "KERNELS" "MODES" PKG...
set -uo pipefail
kernels=$1 modes=$2
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=${JOBS:-2}
systemd=${SYSTEMD:-1}
# Seconds each job took on a quiet 2-core machine (CI of 2026-12-04): the
# order only, a job missing here goes first.
weight() {
	case $1 in
	trixie-backports.v2) echo 875 ;; bullseye.v2) echo 714 ;; trixie.v2) echo 626 ;;
	bookworm.v2) echo 526 ;; bookworm.v1) echo 499 ;; bullseye.v1) echo 411 ;;
	systemd) echo 68 ;; *) echo 10000 ;;
	esac
}
list=()
for k in $kernels; do for m in $modes; do list+=("$(weight "$k.$m") $k $m"); done; done
[ "$systemd" = 1 ] && list+=("$(weight systemd) bookworm systemd")
mapfile -t list < <(printf '%s\n' "${list[@]}" | sort -rn)
out=$(mktemp -d /tmp/cgpeak-vmsuite-XXXXXX)
status=0
running=0
finish() {
	local pid
	wait -n -p pid
	local rc=$?
	local job=${names[$pid]}
	cat "$out/$job.out"
	[ "$rc" -eq 0 ] || { status=1; echo "vm suite: $job: exit $rc"; }
	running=$((running - 1))
}
declare -A names
for entry in "${list[@]}"; do
	read -r _ k m <<<"$entry"
	while [ "$running" -ge "$jobs" ]; do finish; done
	if [ "$m" = systemd ]; then
		"$root/vmtest/suite.sh" "$k" systemd ./cmd/cgpeak/ -run 'Unprivileged|Sudo' >"$out/$k.$m.out" 2>&1 &
	else
		"$root/vmtest/suite.sh" "$k" "$m" "$@" >"$out/$k.$m.out" 2>&1 &
	fi
	names[$!]=$k.$m
	running=$((running + 1))
	echo "vm suite: started $k cgroup $m ($running of $jobs at once)"
done
while [ "$running" -gt 0 ]; do finish; done
rm -rf "$out"
exit $status
