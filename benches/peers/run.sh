#!/bin/bash
# muster's core against DuckDB and Polars on one synthetic tenant, in one run.
# usage: benches/peers/run.sh [PEOPLE] [RUNS]    (defaults 1000000 and 5)
# Needs python3 with venv; installs duckdb and polars from PyPI into
# target/peers-venv the first time.
set -euo pipefail
cd "$(dirname "$0")/../.."
people=${1:-1000000}
runs=${2:-5}
dir=target/peers/$people
venv=target/peers-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet duckdb polars
fi
cargo run --quiet --release --example peer_diff -- "$dir" "$people" "$runs"
"$venv/bin/python" benches/peers/peer_diff.py "$dir" "$runs"
