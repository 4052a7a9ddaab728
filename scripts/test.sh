#!/usr/bin/env bash
# The one command that runs every check CI runs: formatting, lints, then all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# The browser tests drive Chromium with test-only npm packages pinned by package-lock.json.
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
