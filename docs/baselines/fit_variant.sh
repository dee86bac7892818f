#!/usr/bin/env bash
# One training variant measured end to end: rebuilds hate-speech.model and
# harassment.model with other fitting options into a copy of the policy under
# target/variants/NAME, then prints its leave-one-source-out summary with each
# model's ranking alone, the shipped-style OLID and Davidson figures, and the
# policy cases. From the project root, after `cargo build --release`:
#   bash docs/baselines/fit_variant.sh NAME "FIT OPTIONS" [DATA]
# e.g. bash docs/baselines/fit_variant.sh lbfgs \
#   "--bits 16 --word-ngrams 1-2 --char-ngrams 4-5 --solver lbfgs --epochs 200 --l2 1e-5 --nb-alpha 0.1"
# TRAIN=path/to/another/train.sh swaps the recipes (e.g. another threshold rule).
# HATE_FIT="..." fits hate-speech.model with other options than harassment.model.
# The shipped policy is never touched. Without the data it says so and exits 0.
set -euo pipefail
NAME=${1:?name}; FIT=${2:?fit options}; D=${3:-../shared/data}
A=${AUPD:-target/release/aupd}
if [ ! -d "$D/olid2019" ]; then
    echo "skipped: $D is not here (the shared data)"; exit 0
fi
P=target/variants/$NAME
rm -rf "$P"; mkdir -p target/variants; cp -r policies "$P"
AUPD="$A" AUPD_MODELS="$P/models" AUPD_FIT="$FIT" AUPD_HATE_FIT="${HATE_FIT:-$FIT}" bash "${TRAIN:-policies/models/train.sh}" "$D" > "$P.train.log" 2>&1
"$A" policy cross-source --data "$D" --policy "$P" > "$P.loso.log"
"$A" policy cross-source --data "$D" --policy "$P" --shipped > "$P.shipped.log"
"$A" policy test "$P" > "$P.test.log" 2>&1 || true
echo "== $NAME: $FIT${HATE_FIT:+ (hate-speech: $HATE_FIT)}${TRAIN:+ (recipes $TRAIN)}"
echo "leave-one-source-out:"
grep -E "^  (davidson|ethos|stormfront|olid) +F1" "$P.loso.log"
grep -E "^== |models alone" "$P.loso.log" | sed 's/;.*//; s/  ROC-AUC of the models alone vs/    models alone vs/'
echo "trained on every source:"
grep -A4 "^== olid" "$P.shipped.log" | grep -E "harassment|either" | sed 's/^/  olid /'
grep -A3 "^== davidson" "$P.shipped.log" | grep "hate-speech" | sed 's/^/  davidson /'
grep -A6 "^== davidson" "$P.shipped.log" | grep -o "offensive [0-9]*: hate-speech [0-9.]*%" | sed 's/^/  davidson /'
tail -1 "$P.test.log"
