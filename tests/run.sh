#!/usr/bin/env bash
# The whole test suite: installs what the tests need (pyarrow and DuckDB for
# Python, to read civica's Parquet as a real peer would), then runs every
# test target, the benches included in their quick test mode.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c "import pyarrow, duckdb" 2>/dev/null; then
    echo "installing pyarrow and duckdb for the Parquet peer tests..."
    python3 -m pip install --quiet --disable-pip-version-check pyarrow duckdb
fi

cargo test --all-targets "$@"
