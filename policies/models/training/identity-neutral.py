"""Writes identity-neutral.csv: ordinary sentences that name a group.

The hate-speech sources (Davidson, Stormfront, ETHOS) name groups mostly to
attack them, so a model trained on them alone learns "Jews", "gay" or
"Muslim" as signs of hate and flags "The synagogue welcomed Jews and
non-Jews alike". These sentences are the counterweight: every group name of
the hate detectors in neutral or friendly frames, all labelled not hateful.
Training reads only the 80% part (data-row number not divisible by 5); the
rows are shuffled with a fixed seed so that every group is in both parts.

The frames were written for aupd and share no sentence with the evaluation
set in policies/eval/identity.csv. Run from this directory:

    python3 identity-neutral.py > identity-neutral.csv
"""

from negatives import write

# (plural noun, adjective)
GROUPS = [
    ("Jews", "Jewish"), ("Muslims", "Muslim"), ("Black people", "Black"),
    ("African Americans", "African American"), ("gay people", "gay"),
    ("lesbians", "lesbian"), ("trans people", "transgender"),
    ("bisexual people", "bisexual"), ("queer people", "queer"),
    ("immigrants", "immigrant"), ("refugees", "refugee"), ("Mexicans", "Mexican"),
    ("Hispanics", "Hispanic"), ("Latinos", "Latino"), ("Asians", "Asian"),
    ("Chinese people", "Chinese"), ("Indians", "Indian"), ("Arabs", "Arab"),
    ("Africans", "African"), ("Christians", "Christian"), ("Catholics", "Catholic"),
    ("Hindus", "Hindu"), ("Sikhs", "Sikh"), ("Buddhists", "Buddhist"),
    ("women", "female"), ("disabled people", "disabled"), ("deaf people", "deaf"),
    ("Native Americans", "Native American"), ("Somalis", "Somali"),
    ("Pakistanis", "Pakistani"), ("Roma", "Roma"), ("white people", "white"),
    ("atheists", "atheist"), ("Palestinians", "Palestinian"), ("Israelis", "Israeli"),
    ("Koreans", "Korean"), ("Nigerians", "Nigerian"), ("Irish people", "Irish"),
    ("migrants", "migrant"), ("homosexuals", "homosexual"),
]

# {P}/{p}: plural noun, {A}/{a}: adjective (capitalised / as is).
FRAMES = [
    "{P} in our city raised money for the children's hospital",
    "A new survey asked {p} about their jobs and housing",
    "The museum's new exhibit tells the story of {p} in the region",
    "{A} students won the national science fair this year",
    "My best friend is {a} and we have known each other since school",
    "{A} artists will perform at the festival on Sunday",
    "The library has a section of books by {a} authors",
    "The report counts how many {p} work in public service",
    "{P} have lived here for generations and helped build the town",
    "We visited a {a} family for dinner and the food was wonderful",
    "The senator met with {a} community leaders on Tuesday",
    "{A} doctors and nurses worked long shifts during the pandemic",
    "The documentary follows three {a} teenagers through their last year of school",
    "Many {p} volunteer at the food bank every weekend",
    "The council appointed the first {a} judge in the county",
    "{P} and their neighbours planted trees along the river",
    "The school invited {a} parents to talk about their careers",
    "Local {a} businesses are sponsoring the marathon",
    "The census shows the number of {p} in the state has grown",
    "Our team includes {a} engineers, designers and testers",
    "I grew up next door to {a} kids and we played football every day",
    "{P} celebrated the holiday with music and dancing in the park",
    "The professor studies the history of {p} in Europe",
    "A {a} chef opened a new restaurant on Main Street",
    "The charity helps {a} families find housing",
    "Polls show {p} care most about jobs and healthcare",
    "The novel is narrated by a {a} woman who becomes a pilot",
    "The new law protects {p} from discrimination at work",
    "{A} veterans were honoured at the ceremony",
    "She wrote her thesis on the music of {p}",
    "The choir sang songs from {a} tradition",
    "{P} are represented on the city council for the first time",
    "The clinic offers free checkups to {a} elders",
    "A group of {a} students started a coding club",
    "The conference brought together {a} scientists from twelve countries",
    "He is {a} and proud of where he comes from",
    "{P} make up a growing share of small business owners",
    "The podcast interviews {a} entrepreneurs every week",
    "The park hosted a picnic for {a} and non-{a} families alike",
    "{A} writers won two of the five prizes",
    "Researchers interviewed {p} about their experience of the health system",
    "The mayor thanked {a} volunteers for cleaning the beach",
    "Our new neighbours are {a} and very friendly",
    "{A} athletes broke three records at the games",
    "The film about {a} history opens in cinemas next week",
    "Teachers say {a} pupils are doing well in maths",
    "The bakery run by {a} sisters sells the best bread in town",
    "The radio station plays music made by {p}",
    "The city celebrated {a} heritage month with a street fair",
    "Support groups for {p} meet every Thursday evening",
    "Two {a} candidates are running for the school board",
    "The study found {p} wait longer for appointments",
    "{P} gathered at the square to remember the victims",
    "My grandmother taught me recipes from {a} cooking",
    "The company hired more {a} staff this year",
    "{P} have a rich tradition of storytelling",
    "The exhibition shows photographs of {a} life in the 1950s",
    "A {a} author wrote the best seller of the year",
    "The hospital hired interpreters to help {a} patients",
    "{A} families welcomed visitors to the open day",
    "The article profiles {a} farmers in the valley",
    "{P} are among the most active volunteers in the county",
    "The festival celebrates {a} food, dance and film",
    "The university offers scholarships for {a} students",
    "She became the first {a} captain of the national team",
    "Our club welcomes {p} and everyone else who likes chess",
    "{A} workers organised a union at the factory",
    "The comedian talked about growing up {a} in a small town",
    "A {a} couple runs the bookshop on the corner",
    "Voters elected a {a} mayor last November",
    "{P} are celebrating a holiday this weekend",
    "The class learned about the contributions of {p} to science",
    "{A} youth groups cleaned up the playground",
    "The report on {p} in the workforce was published today",
    "Thousands of {p} attended the concert",
    "The photographer spent a year documenting {a} neighbourhoods",
    "I met some {a} tourists on the train to Rome",
    "The panel discussed health care for {p}",
    "{P} and their allies marched for equal rights",
    "The town's oldest resident is a {a} man who turned 104",
    "{P} deserve the same respect as everyone else",
    "{A} workers deserve fair pay for their work",
]


def main():
    rows = [
        f.format(P=p[0].upper() + p[1:], p=p, A=a[0].upper() + a[1:], a=a)
        for f in FRAMES
        for p, a in GROUPS
    ]
    write(rows, "hate", 2)


if __name__ == "__main__":
    main()
