#!/usr/bin/env bash
# Builds LinguaLinked and runs the local demo: three worker processes on loopback, linked
# with CURVE encryption, generate a story with stories260K from ../shared/data (or the model
# given as the first argument, or $LINGUALINKED_MODEL).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/bootstrap.sh build
model=${1:-${LINGUALINKED_MODEL:-../shared/data/models/stories260K/stories260K.gguf}}
if [[ ! -f "$model" ]]; then
  echo "error: no model at '$model'. Pass a GGUF file: tools/demo.sh path/to/model.gguf" >&2
  exit 1
fi
exec build/lingualinked demo -m "$model" --devices 3 -p "Once upon a time" -n 200
