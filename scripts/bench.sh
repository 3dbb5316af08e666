#!/usr/bin/env bash
# Benchmarks tagflow against its peers (crane, skopeo) on loopback registries
# and prints one table with ratios. Not part of the tests.
#   TAGFLOW_BENCH_TAGS=10000 TAGFLOW_BENCH_DIGESTS=2000 scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/tools.sh
eval "$(./scripts/tools.sh env | sed 's/^/export /')"
go test -run '^$' -bench BenchmarkRegistry -benchtime 1x -timeout 60m ./bench/
