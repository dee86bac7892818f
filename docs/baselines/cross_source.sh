#!/usr/bin/env bash
# aupd's cross-source figures and the scikit-learn peer's, in one run.
# From the project root, after `cargo build --release`:
#   bash docs/baselines/cross_source.sh [../shared/data]
# Without the data it says so and exits 0; the peer needs scikit-learn.
set -euo pipefail
D=${1:-../shared/data}
A=${AUPD:-target/release/aupd}
if [ ! -d "$D/olid2019" ]; then
    echo "skipped: $D is not here (the shared data)"; exit 0
fi
# The models read word vectors; retraining them needs the vectors file.
bash policies/models/embeddings.sh
echo "### aupd, each model retrained without the measured source"
"$A" policy cross-source --data "$D"
echo
echo "### aupd as shipped (models trained on every source's training part)"
"$A" policy cross-source --data "$D" --shipped
echo
echo "### the scikit-learn peer"
python3 "$(dirname "$0")/loso_peer.py" "$D"
