#!/usr/bin/env bash
# The one command that runs every check CI runs: formatting, lints, then all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
