#!/usr/bin/env bash
# Builds LinguaLinked and runs the local demo: three worker processes on loopback, linked
# with CURVE encryption, generate a story with stories260K from ../shared/data (or the model
# given as the first argument, or $LINGUALINKED_MODEL). The layers are spread evenly so that
# every device shows its share: for a model this small the default (milp) plan keeps it on
# one device, since a hop costs more than the compute it would move.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/bootstrap.sh build
model=${1:-${LINGUALINKED_MODEL:-../shared/data/models/stories260K/stories260K.gguf}}
if [[ ! -f "$model" ]]; then
  echo "error: no model at '$model'. Pass a GGUF file: tools/demo.sh path/to/model.gguf" >&2
  exit 1
fi
exec build/lingualinked demo -m "$model" --devices 3 --planner even -p "Once upon a time" -n 200
