#!/usr/bin/env bash
# The whole test suite: installs what the tests need (pyarrow and DuckDB for
# Python, to read civica's Parquet as a real peer would; scikit-learn, the
# reference the k-means results are compared with; an S3-compatible
# server), then runs every test target, the benches in their quick test mode.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c "import pyarrow, duckdb, sklearn" 2>/dev/null; then
    echo "installing pyarrow, duckdb and scikit-learn for the peer and reference tests..."
    python3 -m pip install --quiet --disable-pip-version-check pyarrow duckdb scikit-learn
fi

# A real S3-compatible server for the object-storage tests: s3s-fs from
# crates.io, built once into a cache folder (about five minutes).
TOOLS="${CIVICA_TOOLS:-$HOME/.cache/civica-tools}"
export PATH="$TOOLS/bin:$PATH"
if ! command -v s3s-fs >/dev/null 2>&1; then
    echo "installing s3s-fs (an S3-compatible server) into $TOOLS..."
    cargo install s3s-fs@0.14.1 --features binary --locked --root "$TOOLS"
fi

cargo test --all-targets "$@"
