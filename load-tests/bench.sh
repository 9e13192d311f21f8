#!/usr/bin/env bash
# One command per scenario: builds the gateway and the generator (release), then runs
# `dccgw-load bench` on the scenario, which starts its own gateway and references and prints the
# report. Usage: load-tests/bench.sh [scenario-name] [dccgw-load bench flags…]
set -euo pipefail
cd "$(dirname "$0")/.."
scenario="${1:-steady-state}"
shift || true
cargo build --release -p dccgw -p dccgw-load
exec target/release/dccgw-load bench --scenario "load-tests/scenarios/${scenario}.toml" "$@"
