"""A headline's significant words and what each of them tells: the story engine's features.

A word weighs by its information in the language (`wordfreq`'s frequency lists, shipped inside
the package: nothing is downloaded): "titanfall", "plosser" or "kim" tell far more about which
story a headline tells than "update", "talks" or "new". A headline is a unit vector of its
words' weights, so a long headline counts no more than a short one.
"""

from __future__ import annotations

import math
import re
import unicodedata
from functools import lru_cache

# Function words and headline boilerplate carry no story; a small fixed list keeps the rule
# explainable (and the measured numbers reproducible).
STOPWORDS = frozenset(
    """
    a about above after again against all also am amid an and any are as at be been before
    being below between both but by can could did do does doing down during each few for from
    further get gets got had has have having he her here hers him his how i if in into is it its
    just me more most my new news no nor not now of off on once one only or other our out over
    own says say said same she should so some such than that the their them then there these
    they this those through to too two under until up us very via vs was we were what when
    where which while who whom why will with would you your
    update updated updates live video watch report reports breaking exclusive
    am pm gmt utc today yesterday tomorrow week
    monday tuesday wednesday thursday friday saturday sunday mon tue wed thu fri sat sun
    january february march april may june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec
    """.split()
)
# Day numbers and years say when, not what: "March 11, 2014" must not link unrelated roundups.
_DATE_NUMBER = re.compile(r"^(?:\d{1,2}|(?:19|20)\d\d)(?:st|nd|rd|th)?$")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_POSSESSIVE = re.compile(r"['’]s$")

# A headline has a dozen words; a "title" of thousands (a feed's whole body, a hostile one)
# would make every lookup as wide as it is. Words past this many are not looked at.
MAX_HEADLINE_WORDS = 50

# wordfreq's Zipf scale: log10 of a word's frequency per billion words (the commonest word,
# "the", is ~7.7). A word's weight is how far below a frequency of one it is: 9 - zipf, so
# "iceland" weighs 5.2, "kim" 4.4, "talks" 4.4, "update" 4.3. At most 7: the small list below
# stops near zipf 3, so every rarer word ("titanfall", "plosser", "grindavik") weighs the
# same 7. A word the list does not know is as often a place name, a typo or a split token as
# the name of the story, and one such word must not outweigh the rest of the headline.
_ZIPF_CEILING = 9.0
_MAX_WEIGHT = 7.0
WEIGHT_LANGUAGE = "en"


def _plural_folded(word: str) -> str:
    """A light, language-blind plural fold ("reviews" -> "review", "stories" -> "story"), so
    two outlets' wordings of one story meet; no stemmer, so the rule stays explainable."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word[-1] == "s" and word[-2] not in "sui'":
        return word[:-1]
    return word


def story_words(title: str) -> tuple[str, ...]:
    """The distinct significant words of a headline, in order: casefolded, accents removed,
    plurals folded; at most MAX_HEADLINE_WORDS of them, the first ones."""
    text = title.casefold()
    if not text.isascii():  # ASCII has no accents to remove (most English headlines)
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    words: list[str] = []
    for match in _WORD.finditer(text):
        word = match.group()
        if "'" in word or "’" in word:
            word = _POSSESSIVE.sub("", word).replace("’", "'")
        if len(word) <= 1 or word in STOPWORDS or _DATE_NUMBER.match(word):
            continue
        word = _plural_folded(word)
        if word not in words:
            words.append(word)
            if len(words) == MAX_HEADLINE_WORDS:
                break
    return tuple(words)


# wordfreq's "small" list: words down to about one per million (zipf 3). The "large" one adds
# rarer words, all of which weigh near the cap anyway, for 37 MB more in each process that weighs.
WEIGHT_WORDLIST = "small"


@lru_cache(maxsize=100_000)
def word_weight(word: str) -> float:
    """How much a word tells: its information in the language, on wordfreq's Zipf scale."""
    # Imported on first use: the parse workers weigh the headlines (aggregator.prepare), so the
    # writer's process loads it only when it parses in its own thread, prunes or rebuilds.
    import wordfreq

    zipf = wordfreq.zipf_frequency(word, WEIGHT_LANGUAGE, wordlist=WEIGHT_WORDLIST)
    return min(_MAX_WEIGHT, max(0.0, _ZIPF_CEILING - zipf))


def headline_vector(words: tuple[str, ...] | list[str]) -> dict[str, float]:
    """The headline as a unit vector of its words' weights (empty when nothing weighs)."""
    weights = {word: word_weight(word) for word in words}
    norm = math.sqrt(sum(w * w for w in weights.values()))
    if not norm:
        return {}
    return {word: w / norm for word, w in weights.items() if w}
