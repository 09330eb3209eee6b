# What user stacks cost in per-charge mode, run inside a VM: touchpages
# under --trace-charges with and without user stacks (--no-user-stacks), in
# alternation, best of REPS wall times each; then one run of each with
# kernel.bpf_stats_enabled for the programs' own time per page.
REPS=${REPS:-3} PAGES=${PAGES:-65536}
num() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p" "$2" | head -1; }
best() { echo "$@" | tr ' ' '\n' | sed '/^$/d' | sort -g | head -1; }
run() { # backend extra-flag
	cgpeak run --trace-charges --backend "$1" $2 --json --output /tmp/t.json -- taskset -c 0 touchpages "$PAGES" >/dev/null || exit 1
}
echo "| kernel | backend | user stacks | untraced | traced | ratio | events | lost | program ns/page |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for b in fentry kprobe; do
	plain="" with="" without="" lost=0
	for i in $(seq 1 "$REPS"); do
		cgpeak run --json --output /tmp/p.json -- taskset -c 0 touchpages "$PAGES" >/dev/null || exit 1
		plain="$plain $(num wall_seconds /tmp/p.json)"
		run "$b" ""; with="$with $(num wall_seconds /tmp/t.json)"; lost=$((lost + $(num lost_events /tmp/t.json)))
		run "$b" --no-user-stacks; without="$without $(num wall_seconds /tmp/t.json)"; lost=$((lost + $(num lost_events /tmp/t.json)))
	done
	p=$(best $plain)
	echo 1 > /proc/sys/kernel/bpf_stats_enabled
	for u in with without; do
		flag=""; [ $u = without ] && flag=--no-user-stacks
		run "$b" "$flag"
		secs=$(num program_seconds /tmp/t.json) e=$(num events /tmp/t.json)
		eval "t=\$(best \$$u)"
		awk -v k="$(uname -r)" -v b="$b" -v u="$u" -v p="$p" -v t="$t" -v e="$e" -v l="$lost" -v s="${secs:-0}" -v n="$PAGES" 'BEGIN {
			printf "| %s | %s | %s | %.3f s | %.3f s | %.2f | %d | %d | %.0f |\n", k, b, u, p, t, t/p, e, l, s*1e9/n }'
	done
	echo 0 > /proc/sys/kernel/bpf_stats_enabled
done
