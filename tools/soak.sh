#!/usr/bin/env bash
# The long soak of device loss recovery: at least 300 short requests, three at once, through
# three local workers while every 2 s one of them is killed and restarted, frozen and thawed,
# or restarted, at least 30 times; exits non-zero on any request whose text differs from an
# undisturbed run, any hang, growing memory or anything left behind (see cluster-bench --soak).
# Usage: tools/soak.sh [MODEL [SEED]]
set -euo pipefail
cd "$(dirname "$0")/.."
tools/bootstrap.sh build
model=${1:-${LINGUALINKED_MODEL:-../shared/data/models/stories260K/stories260K.gguf}}
seed=${2:-1}
if [[ ! -f "$model" ]]; then
  echo "error: no model at '$model'. Pass a GGUF file: tools/soak.sh path/to/model.gguf" >&2
  exit 1
fi
model=$(realpath "$model")  # workers refuse paths with '..'
exec build/lingualinked cluster-bench -m "$model" --planner even --devices "a;b;c" \
  --soak 300 --faults 30 --in-flight 3 --fault-every 2 --seed "$seed" -p 16 -n 48
