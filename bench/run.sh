#!/usr/bin/env bash
# One command for the benchmarks: builds camgate and camgate-bench, then runs the harness.
#   bench/run.sh [--debug] [camgate-bench ARGS...]
# --debug uses debug builds (what CI runs with --quick); the default is release, which is what
# the figures in bench/REPORT.md mean. Everything else goes to camgate-bench (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=release
args=()
for a in "$@"; do
  if [ "$a" = "--debug" ]; then profile=debug; else args+=("$a"); fi
done
command -v ffmpeg >/dev/null || { echo "bench/run.sh: ffmpeg is needed (apt-get install ffmpeg)" >&2; exit 1; }
if [ "$profile" = release ]; then
  cargo build --release --locked -p camgate -p camgate-bench
else
  cargo build --locked -p camgate -p camgate-bench
fi
target="${CARGO_TARGET_DIR:-target}"
exec "$target/$profile/camgate-bench" "${args[@]}"
