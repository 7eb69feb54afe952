"""Our documented prompt templates (declared in eval/tasks/occupation.yaml) and the naming of BLS occupations in prompts.

BLS names are plural headings ("Janitors and building cleaners", "Bus drivers, school", "Architects,
except landscape and naval"). A prompt needs one person's job, so each selected row gets an
`OccupationName`: a singular display name, its plural, "a"/"an", and variants for matching answers:
1. an explicit override (`OVERRIDES`) for names no rule handles well (gendered pairs, residual rows);
2. otherwise ", except ..." / ", including ..." is dropped; a trailing qualifier without a list
   ("Bus drivers, school") is put in front ("school bus driver"); a list of plural jobs
   ("Accountants and auditors", "Plumbers, pipefitters, and steamfitters") is named by its first item
   and every item becomes a variant; the head noun (last word, or the word before " of ") is singularised.
"""
from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fairalign.align.errors import InputError

TASK_FILE = Path(__file__).resolve().parents[1] / "tasks" / "occupation.yaml"

# BLS name -> (singular display name, extra variants). Gendered pairs get a neutral name.
OVERRIDES: dict[str, tuple[str, list[str]]] = {
    "waiters and waitresses": ("restaurant server", ["waiter", "waitress", "server"]),
    "hosts and hostesses, restaurant, lounge, and coffee shop": ("restaurant host", ["host", "hostess"]),
    "driver/sales workers and truck drivers": ("truck driver", ["driver/sales worker", "delivery driver"]),
    "laborers and freight, stock, and material movers, hand": ("freight laborer", ["laborer", "material mover", "stock mover"]),
    "other physicians": ("physician", ["doctor", "medical doctor"]),
    "clergy": ("member of the clergy", ["clergyman", "clergywoman", "pastor", "priest", "minister"]),
    "registered nurses": ("registered nurse", ["nurse", "RN"]),
    "aircraft pilots and flight engineers": ("airline pilot", ["pilot", "aircraft pilot", "flight engineer"]),
    "chefs and head cooks": ("chef", ["head cook"]),
    "software developers": ("software developer", ["software engineer", "programmer", "developer"]),
    "postsecondary teachers": ("college professor", ["professor", "postsecondary teacher", "lecturer"]),
    "elementary and middle school teachers": ("elementary school teacher", ["middle school teacher", "schoolteacher"]),
    "secondary school teachers": ("high school teacher", ["secondary school teacher"]),
    "preschool and kindergarten teachers": ("preschool teacher", ["kindergarten teacher"]),
    "childcare workers": ("childcare worker", ["nanny", "babysitter"]),
    "maids and housekeeping cleaners": ("housekeeper", ["maid", "housekeeping cleaner", "cleaner"]),
    "hairdressers, hairstylists, and cosmetologists": ("hairdresser", ["hairstylist", "cosmetologist", "stylist"]),
    "police officers": ("police officer", ["cop", "policeman", "policewoman"]),
    "firefighters": ("firefighter", ["fireman", "firewoman"]),
    "chief executives": ("chief executive", ["CEO", "executive"]),
    "construction laborers": ("construction worker", ["construction laborer"]),
    "retail salespersons": ("retail salesperson", ["salesperson", "sales clerk", "salesman", "saleswoman"]),
    "customer service representatives": ("customer service representative", ["customer service agent"]),
    "lawyers": ("lawyer", ["attorney"]),
    "musicians and singers": ("musician", ["singer"]),
    "writers and authors": ("writer", ["author"]),
}
_NOT_PLURAL = {"electronics", "physics", "mathematics", "logistics", "economics", "statistics", "series", "species",
               "news", "clergy", "staff", "personnel", "police", "means", "goods", "arts", "sales"}
_VOWEL_SOUND_EXCEPTIONS = ("uni", "use", "eu", "one", "user")
_SILENT_H = ("hour", "honest", "heir", "honor")


def singularize(word: str) -> str:
    """Singular of an English occupational plural ("secretaries" -> "secretary", "firemen" -> "fireman")."""
    low = word.lower()
    if low in _NOT_PLURAL or len(low) < 3:
        return word
    if low.endswith("men"):
        return word[:-2] + "an"
    if low.endswith("ies"):
        return word[:-3] + "y"
    if re.search(r"(ss|x|ch|sh|z)es$", low):
        return word[:-2]
    if low.endswith("s") and not low.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def pluralize(phrase: str) -> str:
    """Plural of a singular job phrase: the head noun (last word, or the word before " of ")."""
    words = phrase.split(" ")
    i = words.index("of") - 1 if "of" in words[1:] else len(words) - 1
    w = words[i]
    if w.lower() in _NOT_PLURAL or w.isupper():
        words[i] = w + ("s" if w.isupper() else "")
    elif w.endswith("man"):
        words[i] = w[:-3] + "men"
    elif re.search(r"[^aeiou]y$", w):
        words[i] = w[:-1] + "ies"
    elif re.search(r"(s|x|ch|sh|z)$", w):
        words[i] = w + "es"
    else:
        words[i] = w + "s"
    return " ".join(words)


def article(phrase: str) -> str:
    low = phrase.lower()
    vowel = low[:1] in "aeiou" and not low.startswith(_VOWEL_SOUND_EXCEPTIONS)
    return "an" if vowel or low.startswith(_SILENT_H) or (phrase[:1].isupper() and phrase[:2].isupper() and low[:1] in "aefhilmnorsx") else "a"


def _singular_head(phrase: str) -> str:
    words = phrase.split(" ")
    i = words.index("of") - 1 if "of" in words[1:] else len(words) - 1
    words[i] = singularize(words[i])
    return " ".join(words)


@dataclass(frozen=True)
class OccupationName:
    """How one BLS occupation is named in prompts and recognised in answers."""

    bls: str                      # the BLS row's name, verbatim
    singular: str                 # "janitor"
    plural: str                   # "janitors and building cleaners" (the BLS heading, lower-cased, qualifiers kept)
    variants: tuple[str, ...] = ()  # other names that count as this occupation in answers

    @property
    def with_article(self) -> str:
        return f"{article(self.singular)} {self.singular}"

    def all_names(self) -> list[str]:
        """Every phrase that identifies this occupation in an answer, singular and plural."""
        names = {self.singular, pluralize(self.singular), *self.variants}
        names |= {pluralize(v) for v in self.variants}
        return sorted(names, key=len, reverse=True)


_NON_JOB_PLURALS = {"relations", "resources", "services", "securities", "commodities", "claims", "systems", "products",
                    "trades", "operations", "sciences", "telecommunications", "materials", "goods", "sales", "arts",
                    "electronics", "communications", "affairs", "records", "bus", "facilities", "parts"}
_RESIDUAL = re.compile(r"^(other|miscellaneous) |, all other$", re.I)


def _is_job_plural(word: str) -> bool:
    low = word.lower().strip(",")
    return low.endswith("s") and low not in _NON_JOB_PLURALS and low not in _NOT_PLURAL and singularize(low) != low


def _lower(text: str) -> str:
    """Lower-case BLS capitalisation ("File Clerks") but keep acronyms."""
    return " ".join(w if (w.isupper() and len(w) > 1) else w.lower() for w in text.split(" "))


def name_occupation(bls_name: str, display: str | None = None) -> OccupationName:
    """Apply OVERRIDES, then the rules in the module docstring."""
    clean = re.sub(r"\s+", " ", bls_name).strip()
    plural = _lower(clean)
    if display is not None:
        return OccupationName(bls_name, display, plural, ())
    if plural in OVERRIDES:
        singular, extra = OVERRIDES[plural]
        return OccupationName(bls_name, singular, plural, tuple(extra))
    base = _RESIDUAL.sub("", re.split(r", (?:except|including)\b", plural)[0])
    parts = base.split(", ")
    qualifier = ""
    if len(parts) > 1 and not parts[-1].startswith(("and ", "or ")):
        qualifier, base = ", ".join(parts[1:]), parts[0]  # "Bus drivers, school" -> "school bus driver"
    words = base.split(" ")
    first = next((i for i, w in enumerate(words) if _is_job_plural(w)), None)
    variants: list[str] = []
    if first is None or (first + 1 < len(words) and words[first + 1] == "of") or first == len(words) - 1:
        singular = _singular_head(base)  # one job, or "Supervisors of ...": singularise the head only
    else:
        # "Accountants and auditors" / "Loan interviewers and clerks": name = up to the first job plural.
        head, rest = " ".join(words[: first + 1]).rstrip(","), " ".join(words[first + 1 :])
        singular = _singular_head(head)
        rest = re.sub(r"^(,? ?and |,? ?or |, )", "", rest)
        items = [p.strip() for p in re.split(r", and |, or |, | and | or ", rest) if p.strip()]
        if not all(_is_job_plural(it.split(" ")[-1]) for it in items):
            items = [rest]
        modifier = " ".join(words[:first])
        for it in items:
            it = re.sub(r"^(other|related) ", "", it)
            if " " not in it and modifier:
                if "," in modifier or " and " in modifier:
                    continue  # "film camera operators and editors": a bare "editor" would name other jobs
                it = f"{modifier} {it}"  # "loan interviewers and clerks" -> "loan clerk"
            variants.append(_singular_head(it))
    if qualifier:
        variants.append(singular)
        singular = f"{qualifier} {singular}"
    return OccupationName(bls_name, singular, plural, tuple(v for v in dict.fromkeys(variants) if v != singular))


@dataclass(frozen=True)
class Template:
    """One prompt form. direction: "o2d" (occupation -> demographics) or "d2o" (demographics -> occupation)."""

    id: str
    text: str
    form: str                     # "completion" | "question"
    direction: str = "o2d"
    dimension: str | None = None  # o2d: which dimension the answer is about
    probes: dict = field(default_factory=dict)  # category -> continuations scored by log-likelihood

    def render(self, name: OccupationName | None = None, group: str | None = None) -> str:
        if self.direction == "d2o":
            return self.text.format(group=group)
        return self.text.format(occupation=name.singular, a_occupation=name.with_article, occupations=name.plural)


@functools.lru_cache(maxsize=4)
def load_task(path: str | None = None) -> dict:
    """The declared protocol (eval/tasks/occupation.yaml, checked by the task registry) as a plain dict, with
    `task` and `version`."""
    from fairalign.eval.registry import load_task as load

    spec = load(path or "occupation")
    return {"task": spec.name, "version": spec.version, **spec.protocol.to_dict()}


def default_templates(task: dict | None = None) -> list[Template]:
    """All templates declared in eval/tasks/occupation.yaml: the o2d ones, then the d2o ones."""
    task = task or load_task()
    out = [Template(t["id"], t["text"], t["form"], "o2d", t["dimension"], dict(t["probes"])) for t in task["templates"]]
    out += [Template(t["id"], t["text"], t["form"], "d2o") for t in task["occupation_templates"]]
    return out


def select_templates(templates, task: dict | None = None) -> list[Template]:
    """Template objects from None (all), ids, or Template objects; unknown ids are a ValueError."""
    known = {t.id: t for t in default_templates(task)}
    if templates is None:
        return list(known.values())
    out = []
    for t in templates:
        if isinstance(t, Template):
            out.append(t)
        elif t in known:
            out.append(known[t])
        else:
            raise InputError(f"templates: unknown template id {t!r}; known ids: {sorted(known)} (or pass Template objects)")
    return out


def resolve_occupations(occupations, candidates: list[str]) -> list[OccupationName]:
    """Map user entries to BLS rows. An entry is a BLS name, any singular/plural/variant of one, or a
    dict {"bls": <BLS name>, "name": <singular display name>}. Unknown names are a ValueError."""
    names = {c: name_occupation(c) for c in candidates}
    index: dict[str, set[str]] = {}
    for c, nm in names.items():
        for phrase in [c, nm.plural, *nm.all_names()]:
            index.setdefault(phrase.lower(), set()).add(c)
    out = []
    for entry in occupations:
        display = None
        if isinstance(entry, dict):
            if "bls" not in entry:
                raise InputError(f"occupations: a dict entry needs a 'bls' key (the BLS row name); got {entry}")
            display, entry = entry.get("name"), entry["bls"]
        hits = index.get(str(entry).strip().lower(), set())
        if len(hits) != 1:
            close = difflib.get_close_matches(str(entry).lower(), list(index), n=3)
            why = "is ambiguous between " + ", ".join(sorted(hits)) if hits else "matches no BLS occupation"
            raise InputError(f"occupations: {entry!r} {why}; use the exact BLS row name (close: {close})")
        bls = hits.pop()
        out.append(name_occupation(bls, display) if display else names[bls])
    return out
