"""What the generators of this directory share: every sentence they write is
a negative (labelled 0), shuffled with the generator's fixed seed so that
the 80% training part (data-row number not divisible by 5) draws from every
frame, and written as CSV to standard output."""

import csv
import random
import sys


def write(rows: list, column: str, seed: int) -> None:
    """Shuffles `rows` with `seed` and writes them with header `text,COLUMN`."""
    random.Random(seed).shuffle(rows)
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["text", column])
    for text in rows:
        out.writerow([text, 0])
