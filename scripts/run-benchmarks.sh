#!/usr/bin/env bash
# Run the whole benchmark suite: every benchmarks/bench_*.py, one after the
# other, each writing its JSON and Markdown (and the assignment chart) to
# benchmarks/results/. Run it from any directory.
#
# Usage: scripts/run-benchmarks.sh            full run, writes results
#        scripts/run-benchmarks.sh --quick    smoke run of every script, writes nothing
#        scripts/run-benchmarks.sh --quick --json DIR
#                                             smoke run writing each script's figures
#                                             to DIR/<name>.json (.ci/run checks them
#                                             with CXFLOW_BENCH_RESULTS=DIR pytest -m benchmark)
#
# Uses $PYTHON if set, else .venv/bin/python when it exists, else python3 (cxflow
# must be importable: pip install -e '.[test]'). Any arguments are passed to
# every script. Stops at the first script that fails.
# CXFLOW_BENCH_POSTGRES_URL (a throwaway database: cxflow's tables are dropped and
# recreated there) adds PostgreSQL to bench_stores.py and bench_service.py.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    if [[ -x .venv/bin/python ]]; then
        python=.venv/bin/python
    else
        python=python3
    fi
fi

for bench in benchmarks/bench_*.py; do
    printf '\n==> %s %s\n' "$bench" "$*"
    start=$SECONDS
    "$python" "$bench" "$@"
    printf '==> %s done in %ss\n' "$bench" "$((SECONDS - start))"
done
