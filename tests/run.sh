#!/usr/bin/env bash
# The whole test suite: installs what the tests need (pyarrow, DuckDB,
# pandas and polars for Python, to read civica's Parquet as a real peer
# would, and the DuckDB command-line shell; scikit-learn, the reference the
# k-means results are compared with; an S3-compatible server), then runs
# every test target, the benches in their quick test mode.
#
# The Python packages go into a virtual environment of this script's own,
# "$CIVICA_TOOLS/venv" (default ~/.cache/civica-tools/venv), never into the
# system Python (which Debian and Ubuntu refuse: PEP 668). Its bin folder
# comes first on PATH, so the tests' `python3` and `duckdb` are the venv's.
# A second run installs nothing: pip is called only when a package is
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS="${CIVICA_TOOLS:-$HOME/.cache/civica-tools}"
VENV="$TOOLS/venv"

fail() {
    echo "tests/run.sh: $*" >&2
    exit 1
}

# A venv whose Python still runs is kept (one made by a Python since removed
# or upgraded is made again).
if ! "$VENV/bin/python3" -c "import sys" 2>/dev/null; then
    command -v python3 >/dev/null 2>&1 ||
        fail "python3 (3.9 or newer, with its venv module) is needed; on Debian/Ubuntu: apt-get install python3 python3-venv"
    python3 -c "import sys; sys.exit(sys.version_info < (3, 9))" ||
        fail "python3 is $(python3 -V 2>&1); 3.9 or newer is needed"
    # Debian and Ubuntu ship venv without ensurepip, in python3-venv.
    if ! python3 -c "import venv, ensurepip" 2>/dev/null; then
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "installing python3-venv (Python's venv module) with apt-get..."
            if ! { apt-get update -qq &&
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; }; then
                fail "apt-get install python3-venv failed"
            fi
        fi
        python3 -c "import venv, ensurepip" 2>/dev/null ||
            fail "Python's venv module is missing: install it (Debian/Ubuntu: apt-get install python3-venv) and run again"
    fi
    echo "creating a Python virtual environment in $VENV..."
    rm -rf "$VENV"
    mkdir -p "$TOOLS"
    python3 -m venv "$VENV" || { rm -rf "$VENV"; fail "python3 -m venv $VENV failed"; }
fi

# The venv first, then the tools built below, then the caller's PATH.
export PATH="$VENV/bin:$TOOLS/bin:$PATH"
export VIRTUAL_ENV="$VENV"

if ! python3 -c "import pyarrow, duckdb, sklearn, pandas, polars" 2>/dev/null ||
    ! command -v duckdb >/dev/null 2>&1; then
    echo "installing pyarrow, duckdb, duckdb-cli, scikit-learn, pandas and polars into $VENV..."
    python3 -m pip install --quiet --disable-pip-version-check \
        pyarrow duckdb duckdb-cli scikit-learn pandas polars
fi

# A real S3-compatible server for the object-storage tests: s3s-fs from
# crates.io, built once into a cache folder (about five minutes).
if ! command -v s3s-fs >/dev/null 2>&1; then
    echo "installing s3s-fs (an S3-compatible server) into $TOOLS..."
    cargo install s3s-fs@0.14.1 --features binary --locked --root "$TOOLS"
fi

cargo test --all-targets "$@"
