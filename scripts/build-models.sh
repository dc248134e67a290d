#!/usr/bin/env bash
# Rebuilds the default models from the data in models/data (make models). Deterministic: the same
# data and seed give byte-identical model.onnx, model-card.json and manifests.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${VALORA_MODELS_OUT:-models}
# The CRs go to manifests/ (what `npm start` and `kubectl apply` read); beside the models when rebuilding elsewhere.
manifests=manifests
[ -n "${VALORA_MODELS_OUT:-}" ] && manifests="$out/manifests"
valora() { node services/cli/dist/bin.js "$@"; }
valora train --data models/data/ames.csv --target Sale_Price --log-target --seed 42 \
  --exclude Sale_Type --exclude Sale_Condition --exclude-rows Sale_Condition=Abnorml,Family,Alloca,AdjLand --huber-delta 0.05 \
  --out "$out/real-estate" --model-version ames-v1 \
  --emit-manifests --manifests-dir "$manifests" --asset-class real-estate --model-uri file:///opt/valora/models/real-estate/model.onnx
valora train --data models/data/car_prices.csv --target Price --log-target --seed 42 --min-child-samples 4 \
  --one-hot make=Buick,Cadillac,Chevy,Pontiac,Saab,Saturn --one-hot body=convertible,coupe,hatchback,sedan,wagon \
  --out "$out/autos" --model-version gm-v1 \
  --emit-manifests --manifests-dir "$manifests" --asset-class autos --model-uri file:///opt/valora/models/autos/model.onnx
