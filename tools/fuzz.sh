#!/usr/bin/env bash
# Runs each libFuzzer target for a while, starting from its seed corpus in fuzz/corpus/<target>/.
# New inputs go to a scratch directory, so the repository's corpus changes only by hand; a crash
# stops the script and its input is left as BUILD_DIR/fuzz-findings/<target>/crash-*.
# Usage: tools/fuzz.sh BUILD_DIR [SECONDS_EACH=20] [TARGET...]   (default: every fuzz/*_fuzz.cc)   (BUILD_DIR configured with -DLL_FUZZ=ON)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=$1
seconds=${2:-20}
shift $(($# < 2 ? $# : 2))
targets=("$@")
if ((${#targets[@]} == 0)); then
  for f in fuzz/*_fuzz.cc; do targets+=("$(basename "$f" .cc)"); done
fi

for target in "${targets[@]}"; do
  findings="$build_dir/fuzz-findings/$target"
  rm -rf "$findings" && mkdir -p "$findings/new"
  echo "fuzzing $target for ${seconds}s" >&2
  "$build_dir/fuzz/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$findings/" "$findings/new" "fuzz/corpus/$target" 2>"$findings/log" ||
    { tail -n 60 "$findings/log" >&2; echo "$target failed: input and log in $findings" >&2; exit 1; }
  grep -E '^stat::number_of_executed_units|^Done' "$findings/log" >&2 || true
done
