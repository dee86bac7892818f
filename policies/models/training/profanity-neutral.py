"""Writes profanity-neutral.csv: swearing aimed at no one (at the weather,
a phone, a Monday, oneself), and swearing as praise or cheer, some of it
said to "you" in friendship.

The AUP says profanity alone is neither harassment nor hate. The harassment
sources pair swear words with a target so often (OLID's insults at a person
almost all swear; its untargeted profanity is a few hundred tweets) that a
model trained on them learns "fuck" itself as abuse and flags "Fuck this
weather". These sentences are the counterweight, all labelled as neither
harassment nor hate. With the models' `--addressed` features, a swear word
in a text spoken to someone is a feature of its own, so this data can teach
that the word alone is no insult without teaching that an insult at "you"
is none. Training reads only the 80% part (data-row number not divisible by
5); the rows are shuffled with a fixed seed.

The frames were written for aupd and share no sentence with the policy test
cases. Run from this directory:

    python3 profanity-neutral.py > profanity-neutral.csv
"""

from negatives import write

# Things people swear at or about that are not a person.
THINGS = [
    "this weather", "the traffic", "my phone", "this printer", "the wifi", "Mondays",
    "my back", "this heat", "the bus", "this queue", "my commute", "this homework",
    "the deadline", "the rain", "my car", "the update", "this exam", "the snow",
    "my alarm clock", "the parking", "this hangover", "the cold", "my laptop",
    "the train", "this spreadsheet", "the dishwasher", "the roadworks", "this cough",
]

# Swearing at a thing.
AT_THINGS = [
    "Fuck {t}", "{T} is fucking ridiculous", "{T} is such bullshit", "Fucking {t}, again",
    "{T} is shit today", "Damn {t}", "Goddamn {t}", "{T} is a fucking nightmare",
    "Screw {t}", "{T} sucks ass", "Holy shit, {t}", "I'm so fucking done with {t}",
    "{T} can fuck right off", "What the fuck is up with {t}", "{T} is pissing me off",
    "Ugh, {t} is a shitshow", "{T} is fucked again", "Why is {t} always so shit",
]

# Swearing as praise.
PRAISE = [
    "{T} is fucking amazing", "Holy shit, {t} is incredible", "Damn, {t} was good",
    "Fuck yeah, {t}!", "{T} is badass", "{T} is the shit",
]

# Things people praise.
GOOD_THINGS = [
    "this pizza", "the concert", "the new album", "this view", "the game last night",
    "the sunset", "this coffee", "the finale", "the fireworks", "this burger",
    "the comeback", "the new trailer", "this beach", "the festival",
]

# Said to "you", in friendship or about oneself.
FRIENDLY = [
    "You are fucking brilliant, thank you", "Thank you so fucking much", "Damn, you look great",
    "You guys are the shit", "Holy shit, you did it", "Fuck yeah, you passed",
    "You're a fucking legend", "Holy shit, you're hilarious", "You killed it out there, damn",
    "Shit, you scared me", "Damn, you're fast", "You made the best fucking cake",
    "Fuck, I love you guys", "You won? Holy shit, congrats", "You're so fucking talented",
    "Shit, I forgot your birthday, I'm so sorry", "Damn, your garden looks amazing",
    "Fuck me, I'm tired", "I fucked up the recipe again", "Shit, I dropped my keys",
    "Damn it, I missed the bus", "I'm such a fucking mess today lol", "Holy fuck, I'm late",
    "Oh shit, I forgot my lunch", "I swear to god this week is fucked",
]


def cap(s: str) -> str:
    return s[0].upper() + s[1:]


def main() -> None:
    rows = [f.replace("{T}", cap(t)).replace("{t}", t) for f in AT_THINGS for t in THINGS]
    rows += [f.replace("{T}", cap(t)).replace("{t}", t) for f in PRAISE for t in GOOD_THINGS]
    # The friendly lines, each with three endings so they weigh about as
    # much as the other kinds.
    rows += [f"{line}{end}" for line in FRIENDLY for end in ("", "!", " lol")]
    write(rows, "abuse", 20261205)


if __name__ == "__main__":
    main()
