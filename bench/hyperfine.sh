#!/usr/bin/env bash
# cgpeak's times beside hyperfine's, on the host, by `make bench-hyperfine`:
# /bin/true and a command that spins exactly 10 ms, each measured ROUNDS times
# by `hyperfine -N` and by `cgpeak run -N` in alternation (so both see the same
# machine), RUNS runs a round after WARMUP warm-up runs. Prints per command the
# means of both, their difference, and cgpeak's own cost per run: the wall
# time of the whole cgpeak invocation divided by its runs, less the command's
# mean (cgroup made and removed, figures read, launcher started).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5} RUNS=${RUNS:-200} WARMUP=${WARMUP:-20}
command -v hyperfine >/dev/null || { echo "bench: hyperfine is not installed (apt-get install hyperfine)" >&2; exit 1; }
make -s build
gcc -O1 -static -o bin/spin testdata/spin/spin.c
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mean() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["mean"])' "$1"; }
printf '| command | hyperfine -N mean | cgpeak -N mean | difference | cgpeak own cost per run |\n| --- | --- | --- | --- | --- |\n'
for cmd in /bin/true "$PWD/bin/spin 10"; do
	h=() c=() o=()
	for i in $(seq 1 "$ROUNDS"); do
		hyperfine -N --runs "$RUNS" --warmup "$WARMUP" --export-json "$tmp/h.json" "$cmd" >/dev/null 2>&1
		h+=("$(mean "$tmp/h.json")")
		s=$(date +%s.%N)
		bin/cgpeak run -N -q --runs "$RUNS" --warmup "$WARMUP" --export-json "$tmp/c.json" "$cmd"
		e=$(date +%s.%N)
		m=$(mean "$tmp/c.json")
		c+=("$m")
		o+=("$(python3 -c "print(($e - $s) / ($RUNS + $WARMUP) - $m)")")
	done
	python3 - "$cmd" "${h[*]}" "${c[*]}" "${o[*]}" <<'PY'
import sys, statistics as st
cmd, h, c, o = sys.argv[1], *[list(map(float, a.split())) for a in sys.argv[2:]]
hm, cm, om = st.mean(h), st.mean(c), st.mean(o)
print(f"| `{cmd}` | {hm*1e3:.3f} ms | {cm*1e3:.3f} ms | {(cm-hm)*1e3:+.3f} ms | {om*1e3:.2f} ms |")
PY
done
