#!/usr/bin/env bash
# The one command that runs every check CI runs: formatting, lints, the fuzz targets' build,
# then all tests, ending with one line totalling the tests run and failed.
set -euo pipefail
cd "$(dirname "$0")/.."
# The browser tests drive Chromium, and the OpenAPI test validates /openapi.json, with
# test-only npm packages pinned by package-lock.json: installed when missing and again whenever
# the lock file changed since the last install (npm ci writes node_modules/.package-lock.json;
# a newer package-lock.json means a change).
if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/@seriousme/openapi-schema-validator ] \
    || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
fi
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# fuzz/ is its own workspace (libFuzzer needs nightly to run), so the workspace build never
# sees it: check that its targets still compile against today's media and rtsp APIs.
# (docs/security.md has the command that fuzzes.) Its Cargo.lock is the workspace's plus
# libfuzzer-sys (made with `cp Cargo.lock fuzz/` and `cargo metadata` in fuzz/) and its dev
# profile is the workspace's, so in the workspace's target dir it reuses the dependencies the
# lints just checked with the same features (84 crates checked instead of 242: fuzz/ builds
# camgate, and a target dir of its own cost minutes of cold checking).
cargo check --manifest-path fuzz/Cargo.toml --locked --target-dir target
log=target/test-output.txt
mkdir -p target
status=0
cargo test --workspace --locked 2>&1 | tee "$log" || status=$?
# One line for CI summaries: every "test result:" line of every test binary, summed.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1); if ($(i) ~ /^ignored;?$/) g += $(i-1) } }
     END { printf "TOTAL: %d tests run, %d passed, %d failed, %d ignored\n", p + f, p, f, g }' "$log"
if [ "$status" -ne 0 ]; then
    exit "$status"
fi
# The benchmark harness in quick mode (bench/README.md): keeps it working end to end; its
# figures are not asserted, but it fails if a section cannot produce them. Bounded in time.
cargo build --locked -p camgate -p camgate-bench
timeout --kill-after=10 600 bench/run.sh --quick --debug --out target/bench-quick
