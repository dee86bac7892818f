"""Writes everyday-hate.csv: the word "hate" and its kin aimed at things, not
people ("I hate the rain", "I can't stand long meetings").

The AUP says that hating a thing is neither hate speech nor harassment. The
hate sources use "hate" mostly of people, and a model that reads word
vectors learns the word itself: with them, "I hate spiders" scored 0.70 for
`hate-speech`. These sentences are the counterweight, all labelled as
neither. Training reads only the 80% part (data-row number not divisible by
5); the rows are shuffled with a fixed seed.

The frames and things were written for aupd and share no sentence with the
policy test cases or policies/eval/identity.csv. Run from this directory:

    python3 everyday-hate.py > everyday-hate.csv
"""

from negatives import write

THINGS = [
    "the rain", "traffic jams", "cold showers", "broccoli", "homework",
    "waiting in line", "this heat", "long meetings", "flying", "snakes", "wasps",
    "olives", "the dentist", "tax forms", "slow wifi", "bad coffee", "winter",
    "getting up early", "the gym", "exams", "jet lag", "hangovers", "paperwork",
    "loud music at night", "mosquitoes", "cleaning the bathroom", "being late",
    "cold pizza", "spam emails", "sunburn",
]

FRAMES = [
    "I hate {t}", "I really hate {t}", "Honestly I hate {t} so much",
    "Does anyone else hate {t}?", "I hate {t} more than anything", "God I hate {t}",
    "{T}, I hate it", "I absolutely despise {t}", "Ugh, I hate {t}",
    "We all hate {t}", "My kids hate {t}", "Nothing I hate more than {t}",
]


def main():
    rows = [f.format(t=t, T=t[0].upper() + t[1:]) for f in FRAMES for t in THINGS]
    write(rows, "abuse", 5)


if __name__ == "__main__":
    main()
