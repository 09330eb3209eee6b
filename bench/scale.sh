#!/bin/sh
# The tracer at scale: P processes touching 50 MiB each at the same time,
# for P = 1, 2, 4, ... up to the CPUs (and MAXP when given), untraced and
# with each backend and mode, REPS runs each. Per row: wall and system time
# (best of REPS; system time from getrusage of the command's tree), the
# programs' runs and ns per run (kernel.bpf_stats_enabled, one more run:
# counting costs too), events, lost events, exact runs, the widest bound.
#
# It needs only the static binaries of `make guest` (cgpeak, touchpages) on
# PATH and root, so it runs unchanged on a bigger machine:
#   sudo env PATH="$PWD/bin/guest:$PATH" sh bench/scale.sh
# or in a VM with 8 vCPUs: make bench-scale.
#   CONFIGS="tracepoint:summary tracepoint:charges"  backends and modes (default: what probe offers)
#   REPS=3 PAGES=12800 MAXP=16
set -u
REPS=${REPS:-3}
PAGES=${PAGES:-12800}
cpus=$(grep -c ^processor /proc/cpuinfo)
MAXP=${MAXP:-$cpus}
num() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p" "$2" | head -1; }
if [ -z "${CONFIGS:-}" ]; then
	CONFIGS=
	for b in fentry kprobe tracepoint; do
		if cgpeak run -q --trace --backend "$b" -- true >/dev/null 2>&1; then
			CONFIGS="$CONFIGS $b:summary $b:charges"
		fi
	done
fi
run() { # P config out
	cfg=$2 flag=
	case $cfg in
	untraced) ;;
	*:summary) flag="--trace --backend ${cfg%%:*}" ;;
	*:charges) flag="--trace-charges --backend ${cfg%%:*}" ;;
	esac
	# shellcheck disable=SC2086
	TOUCH_PROCS=$1 cgpeak run $flag --json --output "$3" -- touchpages "$PAGES" >/dev/null 2>&1
}
echo "| processes x pages | CPUs | kernel | backend, mode | wall (best) | sys (best) | sys vs untraced | program runs | ns per run | events | lost | exact | widest bound |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
p=1
while [ "$p" -le "$MAXP" ]; do
	base=
	for cfg in untraced $CONFIGS; do
		wall= sys= lost=0 exact=0 bound=0 events=0
		for i in $(seq 1 "$REPS"); do
			run "$p" "$cfg" /tmp/scale.json || { echo "scale: $cfg with $p processes failed" >&2; exit 1; }
			w=$(num wall_seconds /tmp/scale.json) s=$(num sys_seconds /tmp/scale.json)
			wall=$(printf '%s\n%s\n' "$wall" "$w" | sed '/^$/d' | sort -g | head -1)
			sys=$(printf '%s\n%s\n' "$sys" "$s" | sed '/^$/d' | sort -g | head -1)
			if [ "$cfg" != untraced ]; then
				lost=$((lost + $(num lost_events /tmp/scale.json)))
				events=$(num events /tmp/scale.json)
				grep -q '"exact": true' /tmp/scale.json && exact=$((exact + 1))
				b=$(num corrected_peak_error_bytes /tmp/scale.json)
				[ "${b:-0}" -gt "$bound" ] && bound=$b
			fi
		done
		runs=0 ns=0
		if [ "$cfg" != untraced ]; then
			echo 1 >/proc/sys/kernel/bpf_stats_enabled
			run "$p" "$cfg" /tmp/scale.json
			echo 0 >/proc/sys/kernel/bpf_stats_enabled
			runs=$(num program_runs /tmp/scale.json) secs=$(num program_seconds /tmp/scale.json)
			ns=$(awk -v r="${runs:-0}" -v s="${secs:-0}" 'BEGIN { if (r > 0) printf "%.0f", s * 1e9 / r; else print 0 }')
		else
			base=$sys
		fi
		awk -v p="$p" -v n="$PAGES" -v c="$cpus" -v k="$(uname -r)" -v cfg="$cfg" -v w="$wall" -v s="$sys" -v b="$base" \
			-v runs="${runs:-0}" -v ns="$ns" -v e="$events" -v l="$lost" -v x="$exact" -v reps="$REPS" -v bd="$bound" 'BEGIN {
			rel = (b > 0 && cfg != "untraced") ? sprintf("%+.0f%%", 100 * (s - b) / b) : "-"
			if (cfg == "untraced") { printf "| %d x %d | %d | %s | untraced | %.3f s | %.3f s | - | - | - | - | - | - | - |\n", p, n, c, k, w, s; exit }
			printf "| %d x %d | %d | %s | %s | %.3f s | %.3f s | %s | %d | %d | %d | %d | %d of %d | %.0f KiB |\n", p, n, c, k, cfg, w, s, rel, runs, ns, e, l, x, reps, bd / 1024 }'
	done
	[ "$p" -eq "$MAXP" ] && break
	p=$((p * 2))
	[ "$p" -gt "$MAXP" ] && p=$MAXP
done
rm -f /tmp/scale.json
