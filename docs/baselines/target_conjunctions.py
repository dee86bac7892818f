#!/usr/bin/env python3
"""Can a linear hate model learn that abuse of an unprotected target (a
trade, a pest) is not hate speech, without losing hateful texts? Measured on
the peer's model (`loso_peer.py`: scikit-learn logistic regression on hashed
word 1-2 and character 2-5-grams) trained on aupd's hate label, before
changing aupd's own features.

    python3 docs/baselines/target_conjunctions.py [DATA] [VARIANT ...]

Variants (default: all):
  base       hate label as aupd's hate recipe (Davidson class 0, ETHOS isHate,
             Stormfront hate, OLID GRP), aupd's neutral sentences as negatives
  neg        base, plus 648 sentences of abuse at 36 unprotected targets
             (telemarketers, landlords, wasps...), all negatives
  conj       base, plus target-aware features: in a text that names a
             protected group (a fixed list of group nouns and slurs), every
             word 1-2-gram once more as a feature of its own, so the model
             can weigh "are vermin" said of a group apart from "are vermin"
  conj-neg   both
For each: the model trained on every source's training part, flagged at 0.5,
on `policies/eval/functions.csv` (U1: abuse of unprotected targets, must not
flag; U2: the same abuse of protected groups; H and N: every other hateful
and non-hateful frame), and leave-one-source-out F1 and ROC-AUC against each
source's hate label. Needs scikit-learn; without the data it says so and
exits 0. About four minutes a variant on two cores.
"""
import collections
import os
import random
import re
import sys

from loso_peer import missing, pre, read, sources as peer_sources, vectorizers, weighted

POLICIES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "policies")

# Group nouns and slurs whose presence turns the target-aware features on.
GROUPS = set("""
muslim muslims islam islamic jew jews jewish blacks black negro negroes negros
africans african asians asian chinese mexican mexicans immigrant immigrants
migrant migrants refugee refugees arab arabs gay gays lesbian lesbians trans
transgender transgenders women woman girls females feminists christians
christian hindu hindus sikh sikhs catholic catholics gypsies gypsy roma disabled
cripples latinos latino hispanic hispanics indians pakistanis whites white
homosexual homosexuals queer queers somalis syrians nigger niggers nigga niggas
kike kikes faggot faggots fag fags spic spics chink chinks tranny trannies
wetback wetbacks raghead ragheads paki pakis dyke dykes coon coons retard retards
""".split())

# Abuse at targets no AUP protects: none of the targets or frames of the
# `unprotected` set of policies/eval/functions.csv.
TARGETS = [
    "telemarketers", "lobbyists", "landlords", "parking wardens", "tax collectors",
    "spammers", "scammers", "paparazzi", "ticket scalpers", "mosquitoes", "wasps",
    "cockroaches", "seagulls", "fleas", "traffic wardens", "HR managers", "marketers",
    "internet trolls", "spam bots", "estate agents", "debt collectors", "bankers",
    "loan sharks", "used car salesmen", "meter maids", "call centre staff",
    "cable companies", "mall cops", "timeshare sellers", "hedge fund managers",
    "pop-up ads", "dandelions", "ticks", "rats in the subway", "noisy neighbours",
    "tailgaters",
]
FRAMES = [
    "{T} are vermin", "{T} are the scum of the earth", "Every one of those {t} is a parasite",
    "{T} are disgusting creatures", "{T} should all be wiped out", "I hate {t} with a passion",
    "{T} are subhuman trash", "{T} are a disease", "There is nothing lower than {t}",
    "{T} are worthless leeches", "Get rid of all the {t}", "{T} ruin everything they touch",
    "{T} are filth", "No one can stand {t}", "{T} are the worst kind of people",
    "{T} are evil, all of them", "I despise {t}", "{T} make me sick",
]


def unprotected():
    rows = [f.replace("{T}", t[0].upper() + t[1:]).replace("{t}", t)
            for f in FRAMES for t in TARGETS]
    random.Random(7).shuffle(rows)
    return rows


def sources(d):
    """{source: (training rows, held-out rows)}, each row (text, hate, weight):
    the peer's rows, but OLID's label is an insult or threat at a group (GRP),
    as in aupd's hate recipe."""
    out = {name: tuple([(t, y, 1.0) for t, y in part] for part in parts)
           for name, parts in peer_sources(d).items() if name != "olid"}
    train = [(r["tweet"], r["subtask_c"] == "GRP", 1.0)
             for r in read(f"{d}/olid2019/olid-training-v1.0.tsv", "\t")]
    c = dict(line.strip().split(",") for line in open(f"{d}/olid2019/labels-levelc.csv"))
    test = [(r["tweet"], c.get(r["id"]) == "GRP", 1.0)
            for r in read(f"{d}/olid2019/testset-levela.tsv", "\t")]
    out["olid"] = (train, test)
    return out


def ours(neg):
    """aupd's neutral sentences (training part), and with `neg` the abuse at
    unprotected targets, all negatives."""
    rows = []
    for name, weight in (("identity-neutral.csv", 5.0), ("criticism-neutral.csv", 1.0),
                         ("everyday-hate.csv", 1.0)):
        got = read(os.path.join(POLICIES, "models", "training", name))
        rows += [(r["text"], False, weight) for i, r in enumerate(got) if i % 5]
    if neg:
        rows += [(t, False, 1.0) for t in unprotected()]
    return rows


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "../shared/data"
    variants = sys.argv[2:] or ["base", "neg", "conj", "conj-neg"]
    why = missing(d)
    if why:
        print(why)
        return 0
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score, roc_auc_score

    words, chars = vectorizers()

    def names_group(t):
        return any(w in GROUPS for w in re.findall(r"[a-z]+", pre(t)))

    def features(texts, conj):
        blocks = [words.transform(texts), chars.transform(texts)]
        if conj:
            g = np.array([names_group(t) for t in texts])
            c = words.transform(texts).tocsr().multiply(g[:, None]).tocsr()
            c.eliminate_zeros()
            blocks.append(c)
        return weighted(blocks)

    def fit(rows, conj):
        m = LogisticRegression(C=4, class_weight="balanced", max_iter=3000, solver="liblinear")
        m.fit(features([t for t, _, _ in rows], conj), [y for _, y, _ in rows],
              sample_weight=[w for _, _, w in rows])
        return m

    func = [(r["text"], r["hate"] == "1", r["func"][:2], r["set"])
            for r in read(os.path.join(POLICIES, "eval", "functions.csv"))]
    data = sources(d)
    for variant in variants:
        conj, neg = "conj" in variant, "neg" in variant
        extra = ours(neg)
        model = fit([r for tr, _ in data.values() for r in tr] + extra, conj)
        p = model.predict_proba(features([t for t, *_ in func], conj))[:, 1]
        n = collections.Counter()
        for (_, hate, f, s), pp in zip(func, p):
            key = f if s == "unprotected" else ("H" if hate else "N")
            n[key, "n"] += 1
            n[key, "flagged"] += int(pp >= 0.5)
        print(f"{variant:<9} functions flagged: " + "  ".join(
            f"{k} {n[k, 'flagged']}/{n[k, 'n']}" for k in ("U1", "U2", "H", "N")), flush=True)
        out = []
        for held in ("davidson", "ethos", "stormfront", "olid"):
            m = fit([r for name, (tr, _) in data.items() if name != held for r in tr] + extra, conj)
            rows = data[held][1]
            y = np.array([l for _, l, _ in rows])
            pp = m.predict_proba(features([t for t, *_ in rows], conj))[:, 1]
            out.append(f"{held} {f1_score(y, pp >= 0.5):.3f} ({roc_auc_score(y, pp):.3f})")
        print(f"{variant:<9} left out, hate F1 (ROC-AUC): " + "  ".join(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
