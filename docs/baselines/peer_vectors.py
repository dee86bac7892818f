#!/usr/bin/env python3
"""Do word vectors help the scikit-learn peer rank sources it never saw, and
how far could any threshold take it? The peer of `loso_peer.py`, alone and
with the mean GloVe vector of each text's words appended to its n-grams
(times 0.3, as aupd's recipes scale it), leave-one-source-out.

    bash policies/models/embeddings.sh      # once: target/embeddings/glove-100d.bin
    python3 docs/baselines/peer_vectors.py [DATA] [EMBEDDINGS]

For each held-out source it prints F1 at probability 0.5, ROC-AUC, and the
best F1 any threshold could reach on the held-out part itself (a ceiling
for reference, never a figure to ship). The vectors file holds words as
aupd folds them (one letter per run: "good" is "god"); the peer's
lower-cased words are folded the same way before the lookup. Needs scikit-learn;
without the data or the vectors it says so and exits 0.
"""
import os
import re
import struct
import sys

from loso_peer import pre, sources


def read_vectors(path):
    """{word: vector} from an `aupd policy embeddings` file."""
    import numpy as np

    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"AUPDEMB\0":
        raise SystemExit(f"{path}: not an aupd embeddings file")
    _, dims, count = struct.unpack_from("<III", data, 8)
    at, out = 20, {}
    for _ in range(count):
        n = data[at]
        word = data[at + 1:at + 1 + n].decode()
        at += 1 + n
        out[word] = np.frombuffer(data, dtype="<f4", count=dims, offset=at)
        at += 4 * dims
    return out, dims


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "../shared/data"
    e = sys.argv[2] if len(sys.argv) > 2 else "target/embeddings/glove-100d.bin"
    if not os.path.isdir(f"{d}/olid2019"):
        print(f"skipped: {d} is not here (the shared data)")
        return 0
    if not os.path.exists(e):
        print(f"skipped: {e} is not here (bash policies/models/embeddings.sh builds it)")
        return 0
    try:
        import numpy as np
        from scipy.sparse import csr_matrix, hstack
        from sklearn.feature_extraction.text import HashingVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import f1_score, precision_recall_curve, roc_auc_score
        from sklearn.preprocessing import normalize
    except ImportError:
        print("skipped: the peer needs scikit-learn (pip install scikit-learn)")
        return 0
    vectors, dims = read_vectors(e)
    token = re.compile(r"[a-z0-9']+")
    run = re.compile(r"(.)\1+")
    words = HashingVectorizer(ngram_range=(1, 2), n_features=2**20, alternate_sign=False,
                              norm=None, preprocessor=pre)
    chars = HashingVectorizer(analyzer="char_wb", ngram_range=(2, 5), n_features=2**20,
                              alternate_sign=False, norm=None, preprocessor=pre)

    def mean_vectors(texts):
        out = np.zeros((len(texts), dims), dtype=np.float32)
        for i, t in enumerate(texts):
            folded = (run.sub(r"\1", w.replace("'", "")) for w in token.findall(pre(t)))
            known = [vectors[w] for w in folded if w in vectors]
            if known:
                out[i] = np.mean(known, axis=0)
        return out

    def features(texts, with_vectors):
        x = hstack([words.transform(texts), chars.transform(texts)]).tocsr()
        x.data = 1 + np.log(x.data)
        x = normalize(x)
        if with_vectors:
            x = hstack([x, csr_matrix(0.3 * mean_vectors(texts))]).tocsr()
        return x

    data = sources(d)
    for with_vectors in (False, True):
        print("peer + mean word vector" if with_vectors else "peer", flush=True)
        for held in ("davidson", "ethos", "stormfront", "olid"):
            train = [r for name, (tr, _) in data.items() if name != held for r in tr]
            m = LogisticRegression(C=4, class_weight="balanced", max_iter=3000,
                                   solver="liblinear")
            m.fit(features([t for t, _ in train], with_vectors), [y for _, y in train])
            rows = data[held][1]
            y = np.array([label for _, label in rows])
            p = m.predict_proba(features([t for t, _ in rows], with_vectors))[:, 1]
            pr, rc, _ = precision_recall_curve(y, p)
            best = max(2 * a * b / (a + b) for a, b in zip(pr, rc) if a + b > 0)
            print(f"  {held:<11} F1 {f1_score(y, p >= 0.5):.3f}  ROC-AUC {roc_auc_score(y, p):.3f}"
                  f"  best F1 at any threshold {best:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
