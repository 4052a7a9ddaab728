#!/usr/bin/env bash
# The one command that runs every check CI runs: formatting, lints, then all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# The browser tests drive Chromium, and the OpenAPI test validates /openapi.json, with
# test-only npm packages pinned by package-lock.json.
[ -d node_modules/playwright-core ] && [ -d node_modules/@seriousme/openapi-schema-validator ] \
  || npm ci --no-audit --no-fund
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# The benchmark harness in quick mode (bench/README.md): keeps it working end to end; its
# figures are not asserted, but it fails if a section cannot produce them. Bounded in time.
cargo build --locked -p camgate -p camgate-bench
timeout --kill-after=10 240 bench/run.sh --quick --debug --out target/bench-quick
