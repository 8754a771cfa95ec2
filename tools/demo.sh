#!/usr/bin/env bash
# Builds LinguaLinked and generates a story with the stories260K model from ../shared/data
# (or the model given as the first argument, or $LINGUALINKED_MODEL).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/bootstrap.sh build
model=${1:-${LINGUALINKED_MODEL:-../shared/data/models/stories260K/stories260K.gguf}}
if [[ ! -f "$model" ]]; then
  echo "error: no model at '$model'. Pass a GGUF file: tools/demo.sh path/to/model.gguf" >&2
  exit 1
fi
exec build/lingualinked run -m "$model" -p "Once upon a time" -n 200 --temp 0.8 --seed 42
