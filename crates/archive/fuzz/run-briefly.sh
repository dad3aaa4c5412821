#!/usr/bin/env bash
# Runs every fuzz target of strongroom-archive for N seconds each (default 20), for CI:
#   bash crates/archive/fuzz/run-briefly.sh [seconds]
# Only the stable toolchain is installed; RUSTC_BOOTSTRAP=1 lets cargo-fuzz use the
# nightly flags it needs (-Zsanitizer). Exits non-zero if any target finds a crash.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-${FUZZ_SECONDS:-20}}"
export RUSTC_BOOTSTRAP=1
unset CARGO_TARGET_DIR # keep the fuzz build (sanitizer flags) apart from normal builds
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
cargo run --quiet --release --bin seeds -- corpus
cargo fuzz build --release
for target in $(cargo fuzz list); do
    [ "$target" = seeds ] && continue
    echo "== fuzzing $target for ${secs}s"
    cargo fuzz run --release "$target" "corpus/$target" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 2>&1 |
        grep -E "^(==|#[0-9]+.*DONE|stat::number_of_executed_units|INFO: Running|SUMMARY|ERROR|thread)" || true
    # grep hides libFuzzer's progress noise; the exit status must come from cargo fuzz.
    if [ "${PIPESTATUS[0]}" -ne 0 ]; then
        echo "fuzz target $target failed; see crates/archive/fuzz/artifacts/$target" >&2
        exit 1
    fi
done
echo "all fuzz targets ran ${secs}s without a crash"
