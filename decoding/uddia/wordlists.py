"""Attribute word lists for UDDIA's debias term. Lists of one attribute are aligned: the i-th words of every
group form a tuple (she/he), whose mean is removed before the group directions are taken (the paper's SPCA over
gender word pairs; see `fairalign.decoding.uddia.debias`).

Add a group set by passing a .json file {group: [word, ...], ...} as `UDDIAConfig.debias_groups`; all lists
must have the same length.
"""
from __future__ import annotations

import json
from pathlib import Path

# female -> male pairs, written for this project (the paper used 179 pairs; these are the common ones).
GENDER_PAIRS = [
    ("she", "he"), ("her", "his"), ("her", "him"), ("hers", "his"), ("herself", "himself"),
    ("woman", "man"), ("women", "men"), ("girl", "boy"), ("girls", "boys"), ("female", "male"),
    ("females", "males"), ("mother", "father"), ("mothers", "fathers"), ("daughter", "son"),
    ("daughters", "sons"), ("sister", "brother"), ("sisters", "brothers"), ("wife", "husband"),
    ("wives", "husbands"), ("aunt", "uncle"), ("aunts", "uncles"), ("niece", "nephew"),
    ("nieces", "nephews"), ("grandmother", "grandfather"), ("granddaughter", "grandson"),
    ("queen", "king"), ("queens", "kings"), ("princess", "prince"), ("lady", "gentleman"),
    ("ladies", "gentlemen"), ("madam", "sir"), ("mrs", "mr"), ("ms", "mr"), ("bride", "groom"),
    ("girlfriend", "boyfriend"), ("mom", "dad"), ("moms", "dads"), ("mum", "dad"), ("mama", "papa"),
    ("actress", "actor"), ("actresses", "actors"), ("waitress", "waiter"), ("heroine", "hero"),
    ("feminine", "masculine"), ("femininity", "masculinity"), ("sorority", "fraternity"),
    ("gal", "guy"), ("gals", "guys"), ("lass", "lad"), ("maiden", "bachelor"), ("nun", "monk"),
    ("nuns", "monks"), ("duchess", "duke"), ("empress", "emperor"), ("stepmother", "stepfather"),
    ("widow", "widower"), ("motherhood", "fatherhood"), ("sisterhood", "brotherhood"),
    ("spokeswoman", "spokesman"), ("chairwoman", "chairman"), ("businesswoman", "businessman"),
    ("congresswoman", "congressman"), ("policewoman", "policeman"), ("Mary", "John"),
    ("Emily", "James"), ("Sarah", "Michael"), ("Anna", "David"), ("Linda", "Robert"),
]

BUILTIN_GROUPS: dict[str, dict[str, list[str]]] = {
    "gender": {"female": [f for f, _ in GENDER_PAIRS], "male": [m for _, m in GENDER_PAIRS]},
}


def load_groups(spec: str) -> dict[str, list[str]]:
    """Built-in name ('gender') or a .json file -> {group: aligned word list}; validated."""
    if spec in BUILTIN_GROUPS:
        groups = BUILTIN_GROUPS[spec]
    else:
        path = Path(spec)
        if path.suffix != ".json" or not path.is_file():
            raise ValueError(
                f"UDDIAConfig.debias_groups={spec!r}: not a built-in word list {sorted(BUILTIN_GROUPS)} "
                "nor an existing .json file {group: [words, ...]}"
            )
        groups = json.loads(path.read_text())
    if not isinstance(groups, dict) or len(groups) < 2:
        raise ValueError(f"debias groups {spec!r}: need at least two groups, got {type(groups).__name__}")
    lengths = {name: len(words) for name, words in groups.items()}
    if len(set(lengths.values())) != 1 or 0 in lengths.values():
        raise ValueError(f"debias groups {spec!r}: word lists must be aligned and non-empty, got lengths {lengths}")
    return {str(k): [str(w) for w in v] for k, v in groups.items()}
