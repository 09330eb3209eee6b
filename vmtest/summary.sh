#!/usr/bin/env bash
# One table of what the suite ran, from the summaries that the host suite
# and vmtest/suite.sh leave in the results directory (one line each:
# KERNEL RELEASE MODE STATE RAN PASSED FAILED SKIPPED SECONDS), and, given
# a stages file (NAME SECONDS EXIT per line, from .ci/run), each stage's time.
#   vmtest/summary.sh RESULTS_DIR [STAGES_FILE]
set -uo pipefail
dir=$1 stages=${2:-}
if [ -n "$stages" ] && [ -s "$stages" ]; then
	echo "| stage | seconds | exit |"
	echo "| --- | ---: | ---: |"
	awk '{ printf "| %s | %d | %d |\n", $1, $2, $3; t += $2 } END { printf "| all | %d (%d min) | |\n", t, (t + 59) / 60 }' "$stages"
	echo
fi
shopt -s nullglob
files=("$dir"/*.summary)
if [ ${#files[@]} -eq 0 ]; then
	echo "suite: no results in $dir"
	exit 0
fi
echo "| kernel | release | cgroup | result | ran | passed | failed | skipped | seconds |"
echo "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"
# host first, then the kernels oldest first as the README lists them.
for k in host bullseye bookworm trixie trixie-backports; do
	for m in v2 v1 systemd; do
		f=$dir/$k.$m.summary
		[ -f "$f" ] && awk '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }' "$f"
	done
done
for f in "${files[@]}"; do
	case $(basename "$f" .summary) in
	host.* | bullseye.* | bookworm.* | trixie.* | trixie-backports.*) ;;
	*) awk '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }' "$f" ;;
	esac
done
awk '{ r += $5; p += $6; f += $7; s += $8 } END { printf "| all | | | | %d | %d | %d | %d | |\n", r, p, f, s }' "${files[@]}"
