#!/usr/bin/env python3
"""Where does the scikit-learn peer's better ranking come from? The peer of
`loso_peer.py` changed one thing at a time, each measured leave-one-source-out
by ROC-AUC against the source's abuse label (Davidson: class 0).

    python3 docs/baselines/peer_variants.py [DATA] [VARIANT ...]

Variants (default: all):
  peer           the peer as in loso_peer.py (one union abuse label)
  two-models     aupd's labels: a hate model (Davidson class 0, ETHOS isHate,
                 Stormfront hate, OLID GRP) and a harassment model (OLID IND,
                 ETHOS directed; negatives only where a source says "no abuse"),
                 scored by the larger probability (Davidson: the hate model)
  prior          the peer with every source re-weighted to 10% positives, as
                 aupd's recipes do, instead of balanced classes
  two-prior      two-models with that re-weighting
  shared16-c45   aupd's feature shape: word 1-2 and char 4-5-grams sharing
                 2^16 buckets
  sep16-c25      word and char 2-5-grams in 2^16 buckets each
  c0.5           the peer with C = 0.5 (eight times the L2 penalty)
Needs scikit-learn; without the data it says so and exits 0.
"""
import sys

# The peer's own file reading, split and preprocessing, so both scripts
# read the data alike.
from loso_peer import missing, pre, read, split


def load(d):
    """{source: (training rows, held-out rows)}; a row is (text, abuse, hate,
    harassment), where None means the row does not train that model."""
    out = {}
    lab = [(r["tweet"], r["class"] == "0", r["class"] == "0",
            None if r["class"] in ("0", "1") else False)
           for r in read(f"{d}/davidson2017/labeled_data.csv")]
    out["davidson"] = split(lab)
    directed = {r["comment"]: float(r["directed_vs_generalized"]) >= 0.5
                for r in read(f"{d}/ethos/Ethos_Dataset_Multi_Label.csv", ";")}
    lab = []
    for r in read(f"{d}/ethos/Ethos_Dataset_Binary.csv", ";"):
        hate = float(r["isHate"]) >= 0.5
        harass = (True if directed.get(r["comment"]) else None) if hate else False
        lab.append((r["comment"], hate, hate, harass))
    out["ethos"] = split(lab)
    rows = read(f"{d}/stormfront/stormfront_sentences.csv")
    lab = [(i, (r["text"], r["label"] == "hate", r["label"] == "hate",
                None if r["label"] == "hate" else False))
           for i, r in enumerate(rows) if r["label"] not in ("relation", "idk/skip")]
    out["stormfront"] = ([r for i, r in lab if i % 5], [r for i, r in lab if i % 5 == 0])
    train = [(r["tweet"], r["subtask_b"] == "TIN", r["subtask_c"] == "GRP", r["subtask_c"] == "IND")
             for r in read(f"{d}/olid2019/olid-training-v1.0.tsv", "\t")]
    b = dict(line.strip().split(",") for line in open(f"{d}/olid2019/labels-levelb.csv"))
    c = dict(line.strip().split(",") for line in open(f"{d}/olid2019/labels-levelc.csv"))
    test = [(r["tweet"], b.get(r["id"]) == "TIN", c.get(r["id"]) == "GRP", c.get(r["id"]) == "IND")
            for r in read(f"{d}/olid2019/testset-levela.tsv", "\t")]
    out["olid"] = (train, test)
    return out


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "../shared/data"
    why = missing(d)
    if why:
        print(why)
        return 0
    import numpy as np
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import normalize

    def features(wbits=20, cbits=20, chars=(2, 5), shared=False):
        w = HashingVectorizer(ngram_range=(1, 2), n_features=2**wbits, alternate_sign=False,
                              norm=None, preprocessor=pre)
        c = HashingVectorizer(analyzer="char_wb", ngram_range=chars, n_features=2**cbits,
                              alternate_sign=False, norm=None, preprocessor=pre)

        def f(texts):
            a, b = w.transform(texts), c.transform(texts)
            x = (a + b).tocsr() if shared else hstack([a, b]).tocsr()
            x.data = 1 + np.log(x.data)
            return normalize(x)
        return f

    def prior_weights(sources, y, prior=0.1):
        wt = np.ones(len(y))
        for s in set(sources):
            idx = np.array([i for i, t in enumerate(sources) if t == s])
            pos, n = y[idx].sum(), len(idx)
            if 0 < pos < n:
                wt[idx] = np.where(y[idx], prior * n / pos, (1 - prior) * n / (n - pos))
        return wt

    def fit(x, y, c, weights):
        m = LogisticRegression(C=c, class_weight=None if weights is not None else "balanced",
                               max_iter=2000, solver="liblinear")
        m.fit(x, y, sample_weight=weights)
        return m

    data = load(d)

    def run(name, feats, c=4.0, two=False, prior=None):
        out = []
        for held in ("davidson", "ethos", "stormfront", "olid"):
            train = [(s, r) for s, (tr, _) in data.items() if s != held for r in tr]
            test = data[held][1]
            xtr, xte = feats([r[0] for _, r in train]), feats([r[0] for r in test])
            y = np.array([r[1] for r in test])
            if not two:
                yt = np.array([r[1] for _, r in train])
                wt = prior_weights([s for s, _ in train], yt) if prior else None
                p = fit(xtr, yt, c, wt).predict_proba(xte)[:, 1]
            else:
                ps = []
                for k in (2, 3):
                    idx = [i for i, (_, r) in enumerate(train) if r[k] is not None]
                    yt = np.array([train[i][1][k] for i in idx])
                    wt = prior_weights([train[i][0] for i in idx], yt) if prior else None
                    ps.append(fit(xtr[idx], yt, c, wt).predict_proba(xte)[:, 1])
                p = ps[0] if held == "davidson" else np.maximum(ps[0], ps[1])
            out.append(f"{held} {roc_auc_score(y, p):.3f}")
        print(f"  {name:<14} ROC-AUC " + "  ".join(out), flush=True)

    variants = {
        "peer": lambda: run("peer", features()),
        "two-models": lambda: run("two-models", features(), two=True),
        "prior": lambda: run("prior", features(), prior=True),
        "two-prior": lambda: run("two-prior", features(), two=True, prior=True),
        "shared16-c45": lambda: run("shared16-c45", features(16, 16, (4, 5), True)),
        "sep16-c25": lambda: run("sep16-c25", features(16, 16)),
        "c0.5": lambda: run("c0.5", features(), c=0.5),
    }
    chosen = sys.argv[2:] or list(variants)
    for v in chosen:
        if v not in variants:
            print(f"unknown variant {v!r}; known: {', '.join(variants)}")
            return 2
    print("peer variants, leave-one-source-out ROC-AUC against each source's abuse label")
    for v in chosen:
        variants[v]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
