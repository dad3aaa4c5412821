#!/usr/bin/env bash
# Runs every fuzz target of strongroom-archive for N seconds each (default 20), for CI:
#   bash crates/archive/fuzz/run-briefly.sh [seconds]
# Only the stable toolchain is installed; RUSTC_BOOTSTRAP=1 lets cargo-fuzz use the
# nightly flags it needs (-Zsanitizer). Exits non-zero if any target finds a crash.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-${FUZZ_SECONDS:-20}}"
export RUSTC_BOOTSTRAP=1
# The fuzz build (sanitizer flags) lives apart from normal builds, outside the clone so
# that later runs on the same machine reuse it.
unset CARGO_TARGET_DIR
target_dir="${STRONGROOM_FUZZ_TARGET_DIR:-/var/tmp/strongroom-fuzz/target}"
mkdir -p "$target_dir"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
cargo run --quiet --release --target-dir "$target_dir" --bin seeds -- corpus
cargo fuzz build --release --target-dir "$target_dir"
for target in $(cargo fuzz list); do
    [ "$target" = seeds ] && continue
    echo "== fuzzing $target for ${secs}s"
    log="$target_dir/fuzz-$target.log"
    status=0
    cargo fuzz run --release --target-dir "$target_dir" "$target" "corpus/$target" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || status=$?
    # Show the summary, not libFuzzer's progress noise.
    grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units)" "$log" || true
    if [ "$status" -ne 0 ]; then
        tail -n 60 "$log" >&2
        echo "fuzz target $target failed; reproducer in crates/archive/fuzz/artifacts/$target" >&2
        exit 1
    fi
done
echo "all fuzz targets ran ${secs}s without a crash"
