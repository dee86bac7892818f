"""Writes functional.csv: short texts in the manner of a functional test of
hate speech, one frame per kind of case, each frame filled with eight
groups. Nothing here is used for training.

Kinds (column `kind`; `hate` is 1 for `hateful` only):
- `hateful`: plain hatred, dehumanisation, threats, profanity, evasive
  spelling, and hate that borrows the frames of counter-speech;
- `positive`: praise, respect or support naming a group;
- `counter`: counter-speech that quotes or names a hateful claim to reject it;
- `other`: swearing and abuse aimed at no protected group (neither
  hate-speech; some are harassment).

Column `set`: `first` frames were written and measured before the context
phrases of this round were chosen, and used to choose them; `second` frames
were written afterwards and used once to check those phrases, then two
phrases were dropped because hateful `second` frames used them. Run from
this directory:

    python3 functional.py > functional.csv
"""

import csv
import sys

GROUPS_FIRST = ["women", "trans people", "gay people", "black people",
                "disabled people", "Muslims", "immigrants", "Jews"]
GROUPS_SECOND = ["women", "trans people", "gay men", "Black people",
                 "disabled people", "Muslims", "refugees", "Jews"]

FIRST = {
    "hateful": [
        "I hate {g}.", "{G} are disgusting.", "{G} are vermin.", "All {g} are scum.",
        "{G} are a cancer on our society.", "{G} should all be killed.",
        "I want to kill all {g}.", "{G} are lesser beings.", "{G} are too stupid to vote.",
        "Fucking {g} are disgusting.", "I hate {g}. They make me sick.", "{G} are not human.",
        "Why are {g} so stupid?", "I think {g} are parasites.", "{G} belong in a zoo.",
        "Never trust a single one of {g}.", "{G} should be deported, every last one.",
        "We should get rid of {g} once and for all.", "There is nothing worse than {g}.",
        "{G} are a plague.", "I h4te {g}.", "{G} are disgustign.", "Ihate{n}.",
        "{G} are worthless.", "Death to {g}.",
    ],
    "positive": [
        "I love {g}.", "{G} are great.", "Many of my friends are {g}.",
        "{G} deserve equal rights.", "The event celebrates {g} in our city.",
    ],
    "counter": [
        "I don't hate {g}.", "No {g} deserve to die.", "{G} are not vermin.",
        "Saying that {g} are disgusting is just bigotry.",
        "I'm so tired of people saying {g} are scum.", "Hating {g} is wrong.",
        "Why do people hate {g}?", "If you think {g} are vermin, you are the problem.",
        "Statements like '{g} are scum' are deeply hurtful.",
    ],
}
SECOND = {
    "hateful": [
        "Why do people hate {g}? Because they are filthy parasites.",
        "{G}, you are the problem with this country.",
        "It's not bigotry to say {g} are animals, it's the truth.",
        "Tired of people saying {g} are equal. They are not.",
        "{G} are subhuman and should be ashamed to exist.",
        "Is it hurtful to say {g} are vermin? Good, because they are.",
    ],
    "counter": [
        "Calling {g} animals is just bigotry dressed up as opinion.",
        "It's deeply hurtful when people claim {g} are inferior.",
        "Anyone who says {g} are subhuman should be ashamed of themselves.",
        "My uncle keeps saying {g} are criminals and it is so hurtful.",
        "I'm sick of people saying {g} ruin everything.",
        "If you believe {g} are a disease, you're the problem, not them.",
        "Posts claiming {g} are vermin are pure bigotry.",
        "Why do people hate {g} so much? They have done nothing wrong.",
    ],
}
OTHER = [
    "Fuck yeah, what a game!", "This shit is amazing!", "Fuck this weather.",
    "Holy shit, that was close.", "I hate cabbage.", "Mondays are the worst.",
    "Lawyers are scum.", "Politicians are all liars.", "You are a lowlife.",
    "Bankers should all go to hell.", "I could kill for a pizza right now.",
    "This traffic is fucking ridiculous.",
]


def main():
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["text", "hate", "kind", "set"])
    for name, frames, groups in (("first", FIRST, GROUPS_FIRST), ("second", SECOND, GROUPS_SECOND)):
        for kind, texts in frames.items():
            for frame in texts:
                for g in groups:
                    text = frame.format(g=g, G=g[0].upper() + g[1:], n=g.replace(" ", ""))
                    out.writerow([text, int(kind == "hateful"), kind, name])
    for text in OTHER:
        out.writerow([text, 0, "other", "first"])


if __name__ == "__main__":
    main()
