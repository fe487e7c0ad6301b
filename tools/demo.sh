#!/usr/bin/env bash
# `make demo`: profile the bundled demo workload for a few seconds, write demo.pb.gz, and show
# the summary plus the hottest call paths as the real pprof tool prints them.
set -euo pipefail
build=${1:-build}
if [ "$(id -u)" -ne 0 ]; then
	echo "demo: profd needs root (CAP_BPF, CAP_PERFMON); run 'sudo make demo'." >&2
	exit 1
fi
"$build/profd" record -F 499 -o demo.pb.gz -- "$build/workloads/demo" 4
echo
echo "== pprof -top (go tool pprof reads the same file)"
"$build/pprof" -top -nodecount=12 demo.pb.gz 2>/dev/null
echo
echo "== pprof -peek blend_pixels (who calls the hottest function, and what it calls)"
"$build/pprof" -peek '^blend_pixels$' demo.pb.gz 2>/dev/null | sed -n '/flat  flat%/,$p'
echo
echo "Open it yourself: $build/pprof -http=127.0.0.1:8080 demo.pb.gz  (or speedscope demo.pb.gz)"
