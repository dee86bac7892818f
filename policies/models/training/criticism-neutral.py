"""Writes criticism-neutral.csv: harsh words about plans, products,
institutions and performances, none of them aimed at a person.

The AUP calls abuse aimed at a person harassment, and says that heated
disagreement without abuse is not. The harassment sources (OLID above all,
much of it US political talk) pair harsh words with targets so often that a
model trained on them alone learns "garbage", "useless" or "a disgrace" as
abuse, and flags "The senator's tax plan is garbage and I will vote against
her". These sentences are the counterweight, all labelled as neither
harassment nor hate. Training reads only the 80% part (data-row number not
divisible by 5); the rows are shuffled with a fixed seed.

The frames were written for aupd and share no sentence with the policy test
cases. Run from this directory:

    python3 criticism-neutral.py > criticism-neutral.csv
"""

from negatives import write

# Things people criticise that are not a person.
TARGETS = [
    "the new tax plan", "this bill", "the city budget", "the school board's decision",
    "the court's ruling", "the government's response", "the new policy", "the trade deal",
    "Congress", "the city council", "the committee's report", "the agency's rules",
    "this movie", "the sequel", "the finale", "the new album", "this book", "the show",
    "the new phone", "the update", "this app", "the airline", "the hotel", "the restaurant",
    "the customer service", "the delivery", "the train service", "the internet provider",
    "the team's defense", "the last call", "the game plan", "the halftime show",
    "the company's policy", "the new logo", "the product launch", "the price increase",
    "the election ad", "the campaign slogan", "the debate format", "the new stadium",
]

FRAMES = [
    "{T} is garbage", "{T} is useless", "{T} is a disgrace", "{T} is a total waste of money",
    "{T} is a joke", "{T} is the worst I've ever seen", "{T} is stupid and wrong",
    "{T} got it completely wrong", "{T} is a disaster", "{T} is pathetic",
    "What a terrible decision by {t}", "{T} is a scam", "{T} sucks",
    "{T} is trash and everyone knows it", "I will vote against {t}", "{T} is ridiculous",
    "{T} is an embarrassment", "Honestly {t} is a bad joke", "{T} was a complete failure",
    "I'm so angry about {t}", "{T} is dumb", "{T} is a mess from start to finish",
    "Worst decision ever: {t}", "{T} is absolutely terrible", "{T} is hot garbage",
    "Nobody asked for {t}", "{T} is a waste of time", "{T} makes no sense at all",
    "{T} is awful and should be scrapped", "I hate {t} so much",
]


def main() -> None:
    rows = [
        frame.replace("{T}", target[0].upper() + target[1:]).replace("{t}", target)
        for frame in FRAMES
        for target in TARGETS
    ]
    write(rows, "abuse", 20261204)


if __name__ == "__main__":
    main()
