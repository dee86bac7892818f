#!/usr/bin/env python3
"""The peer a user would build instead of aupd's scorer, measured the way
`aupd policy cross-source` measures aupd: scikit-learn logistic regression
on hashed word 1-2-grams and character 2-5-grams (sublinear tf, L2-normalised,
balanced classes), trained on the shared data with one binary "abusive" label
per source, flagged at probability 0.5.

    python3 docs/baselines/loso_peer.py [../shared/data]

Labels: Davidson class 0 (hate), ETHOS isHate >= 0.5, Stormfront "hate"
(relation and idk/skip left out), OLID subtask_b TIN (targeted insult or
threat). Held-out parts: the shared split (data-row number divisible by 5)
and OLID's official test set; OLID's training file is used whole. For each
source: trained without it (leave-one-source-out), measured on its held-out
part. Last: trained on every source, measured on OLID's test set.
Needs scikit-learn (pip install scikit-learn); without the data it says so
and exits 0. Takes a few minutes on two cores.
"""
import csv
import os
import re
import sys

csv.field_size_limit(10**9)


def read(path, delimiter=","):
    with open(path, newline="", encoding="utf-8") as f:
        if delimiter == "\t":
            return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        return list(csv.DictReader(f, delimiter=delimiter))


def pre(t):
    """The peer's text preprocessing: links and user names as placeholders,
    lower case."""
    t = re.sub(r"https?://\S+", " URL ", t)
    t = re.sub(r"@\w+", "@USER", t)
    return t.lower()


def sources(d):
    """{name: (training rows, held-out rows)}, each row (text, label)."""
    out = {}
    rows = read(f"{d}/davidson2017/labeled_data.csv")
    lab = [(r["tweet"], r["class"] == "0") for r in rows]
    out["davidson"] = split(lab)
    rows = read(f"{d}/ethos/Ethos_Dataset_Binary.csv", ";")
    out["ethos"] = split([(r["comment"], float(r["isHate"]) >= 0.5) for r in rows])
    rows = read(f"{d}/stormfront/stormfront_sentences.csv")
    lab = [(i, r["text"], r["label"] == "hate") for i, r in enumerate(rows)
           if r["label"] not in ("relation", "idk/skip")]
    out["stormfront"] = ([(t, y) for i, t, y in lab if i % 5],
                         [(t, y) for i, t, y in lab if i % 5 == 0])
    train = [(r["tweet"], r["subtask_b"] == "TIN")
             for r in read(f"{d}/olid2019/olid-training-v1.0.tsv", "\t")]
    b = dict(line.strip().split(",") for line in open(f"{d}/olid2019/labels-levelb.csv"))
    test = [(r["tweet"], b.get(r["id"]) == "TIN")
            for r in read(f"{d}/olid2019/testset-levela.tsv", "\t")]
    out["olid"] = (train, test)
    return out


def split(rows):
    return ([r for i, r in enumerate(rows) if i % 5], [r for i, r in enumerate(rows) if i % 5 == 0])


def missing(d):
    """Why a baseline script cannot run here, or None: each needs the shared
    data folder and scikit-learn, and skips with this message without them."""
    if not os.path.isdir(f"{d}/olid2019"):
        return f"skipped: {d} is not here (the shared data)"
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return "skipped: needs scikit-learn (pip install scikit-learn)"
    return None


def weighted(blocks):
    """The peer's weighting of count blocks side by side: sublinear tf
    (1 + log of each count), every row L2-normalised."""
    import numpy as np
    from scipy.sparse import hstack
    from sklearn.preprocessing import normalize

    x = hstack(blocks).tocsr()
    x.data = 1 + np.log(x.data)
    return normalize(x)


def vectorizers():
    """The peer's features before weighting: hashed word 1-2-grams and
    character 2-5-grams (scikit-learn must be importable)."""
    from sklearn.feature_extraction.text import HashingVectorizer
    words = HashingVectorizer(ngram_range=(1, 2), n_features=2**20, alternate_sign=False,
                              norm=None, preprocessor=pre)
    chars = HashingVectorizer(analyzer="char_wb", ngram_range=(2, 5), n_features=2**20,
                              alternate_sign=False, norm=None, preprocessor=pre)
    return words, chars


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "../shared/data"
    why = missing(d)
    if why:
        print(why)
        return 0
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

    words, chars = vectorizers()

    def features(texts):
        return weighted([words.transform(texts), chars.transform(texts)])

    def fit(rows):
        m = LogisticRegression(C=4, class_weight="balanced", max_iter=2000, solver="liblinear")
        m.fit(features([t for t, _ in rows]), [y for _, y in rows])
        return m

    def report(name, model, rows):
        y = np.array([l for _, l in rows])
        p = model.predict_proba(features([t for t, _ in rows]))[:, 1]
        f = p >= 0.5
        print(f"  {name:<28} P {precision_score(y, f, zero_division=0):.3f} "
              f"R {recall_score(y, f):.3f} F1 {f1_score(y, f):.3f} "
              f"ROC-AUC {roc_auc_score(y, p):.3f} flagged {100 * f.mean():.1f}%", flush=True)

    data = sources(d)
    print("peer: scikit-learn logistic regression, hashed word 1-2 + char 2-5-grams, "
          "binary abuse label, threshold 0.5")
    for held in ("davidson", "ethos", "stormfront", "olid"):
        train = [r for name, (tr, _) in data.items() if name != held for r in tr]
        report(f"{held} (trained without it)", fit(train), data[held][1])
    train = [r for tr, _ in data.values() for r in tr]
    report("olid (trained on all four)", fit(train), data["olid"][1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
