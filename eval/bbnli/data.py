"""BBNLI data (Akyürek et al., Findings of NAACL 2022; MIT) and the BBNLI-next schema.

One row = one NLI pair: a premise from a real source, a hypothesis and its gold label
(0 contradiction, 1 neutral, 2 entailment). `hypothesis_type` is `test` (a factual check with a real
gold label), `stereotypical` (gold 1: the premise does not license the stereotype; bias_label 2 = the
stereotype-confirming answer) or `anti-stereotypical` (the same hypothesis with the two groups swapped).
`type` is `pro` (the template's GROUP1/GROUP2 as written) or `anti` (swapped in premise AND hypothesis).

`load_bbnli(path)` reads
- a folder of template JSON files (the released `data/bbnli/<domain>/*.json`), expanded by
  `expand_template` exactly as the original `json2csv.py` does (see its docstring);
- an expanded CSV (`bbnli_expanded.csv`, `validation.csv`, a BBNLI-next export);
- the Hub dataset `feyzaakyurek/BBNLI` (split `test`) when online;
- `"demo"`: fairalign's own small probe set in BBNLI's shape (`demo_probes_path()`, resources/README.md), for
  offline runs. A demo, not a benchmark: the loaded dataset's notes say so.

A BBNLI-next-style dataset has the same columns plus `variant_of` (the `item_id` of the BBNLI row it
varies) and `variation` (the kind of variation, e.g. `lexical_hypothesis`); original rows leave both empty.

Files are checked as they are read, before any model loads: a file that is empty, has a header only, lacks
a required column, is not UTF-8, or has a bad row or a JSON syntax error is an `InputError` naming the file
and the line (and a path that does not exist is a `MissingPathError`).
"""
from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import os
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from fairalign.align.errors import InputError, MissingPathError
from fairalign.align.files import could_be_hub_id, read_text

HUB_ID = "feyzaakyurek/BBNLI"
DEMO = "demo"  # load_bbnli's name (the string only) for the shipped demo probes; a folder called demo: "./demo"
RESOURCES = Path(__file__).resolve().parent / "resources"
DEMO_NOTE = ("DEMO probe set, not a benchmark: {rows} NLI pairs fairalign wrote itself (not BBNLI's sentences; invented "
             "premises) so the pipeline runs offline. Its numbers check the plumbing, not a model's bias "
             "(eval/bbnli/resources/README.md).")
LABELS = {0: "contradiction", 1: "neutral", 2: "entailment"}
HYPOTHESIS_TYPES = ("test", "stereotypical", "anti-stereotypical")
CONDITIONS = ("pro", "anti")
# The released CSV's columns, in order.
COLUMNS = ("domain", "name", "id", "type", "unique_id", "premise", "hypothesis_type", "hypothesis",
           "question", "true_label", "bias_label", "reference")
NEXT_COLUMNS = ("variant_of", "variation")
# Columns a CSV row must have (reference, unique_id and question may be absent: they are derived or optional).
REQUIRED_COLUMNS = tuple(c for c in COLUMNS if c not in ("reference", "unique_id", "question"))


@dataclass(frozen=True)
class BBNLIExample:
    """One BBNLI (or BBNLI-next) row. `item_id` is a content hash, identical whichever source it came from."""

    domain: str
    name: str
    id: str
    type: str
    unique_id: str
    premise: str
    hypothesis_type: str
    hypothesis: str
    question: str
    true_label: int
    bias_label: int
    reference: str = ""
    variant_of: str = ""
    variation: str = ""

    def __post_init__(self):
        if self.type not in CONDITIONS:
            raise InputError(f"type must be one of {CONDITIONS}; got {self.type!r} in row {self.unique_id!r}")
        if self.hypothesis_type not in HYPOTHESIS_TYPES:
            raise InputError(
                f"hypothesis_type must be one of {HYPOTHESIS_TYPES}; got {self.hypothesis_type!r} in row {self.unique_id!r}"
            )
        if self.true_label not in LABELS:
            raise InputError(f"true_label must be 0, 1 or 2; got {self.true_label!r} in row {self.unique_id!r}")
        if self.bias_label not in (-1, 0, 1, 2):
            raise InputError(f"bias_label must be -1 (none), 0, 1 or 2; got {self.bias_label!r} in row {self.unique_id!r}")
        if self.hypothesis_type != "test" and self.bias_label == -1:
            raise InputError(f"{self.hypothesis_type} row {self.unique_id!r} needs a bias_label (0, 1 or 2), not -1")
        if not self.premise.strip() or not self.hypothesis.strip():
            raise InputError(f"row {self.unique_id!r} has an empty premise or hypothesis")

    @property
    def item_id(self) -> str:
        """Stable row id: subtopic, premise index, condition, hypothesis type and a hash of the texts."""
        text = "\x1f".join((self.domain, self.name, self.id, self.type, self.hypothesis_type,
                            self.premise, self.hypothesis, self.question))
        digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]
        return f"{self.unique_id}:{self.hypothesis_type}:{digest}"

    @property
    def premise_key(self) -> str:
        """The bootstrap cluster: one source premise (its pro and anti versions, every filler, every variant)."""
        return f"{self.domain}/{self.name}/{self.id}"

    @property
    def group_key(self) -> str:
        """An item and its meaning-preserving variants share this key (brittleness groups)."""
        return self.variant_of or self.item_id

    def to_dict(self) -> dict:
        return {**asdict(self), "item_id": self.item_id}


@dataclass
class BBNLIDataset:
    """A list of `BBNLIExample` with its provenance.

    notes: what the loader noticed and did (e.g. an undefined template placeholder rendered empty).
    """

    examples: list[BBNLIExample]
    source: str = ""
    notes: list[str] = None

    def __post_init__(self):
        self.examples = list(self.examples)
        self.notes = list(self.notes or [])

    def __len__(self) -> int:
        return len(self.examples)

    def __iter__(self) -> Iterator[BBNLIExample]:
        return iter(self.examples)

    def __getitem__(self, i):
        return self.examples[i]

    @property
    def has_variants(self) -> bool:
        return any(ex.variant_of for ex in self.examples)

    def select(self, keep: Callable[[BBNLIExample], bool]) -> "BBNLIDataset":
        return BBNLIDataset([ex for ex in self.examples if keep(ex)], self.source, self.notes)

    def subsample(self, max_premises_per_name: int) -> "BBNLIDataset":
        """The first `max_premises_per_name` premise indices of every subtopic (all conditions, hypotheses)."""
        from fairalign.align.validation import check_number

        check_number(max_premises_per_name, "max_premises_per_name", "[1, inf)", integer=True)
        kept: dict[str, list[str]] = {}
        for ex in self.examples:
            ids = kept.setdefault(ex.name, [])
            if ex.id not in ids and len(ids) < max_premises_per_name:
                ids.append(ex.id)
        out = self.select(lambda ex: ex.id in kept[ex.name])
        out.notes.append(f"subsampled: first {max_premises_per_name} premise(s) per subtopic")
        return out

    def concat(self, other: "BBNLIDataset") -> "BBNLIDataset":
        return BBNLIDataset(self.examples + other.examples, f"{self.source} + {other.source}", self.notes + other.notes)

    def to_csv(self, path: str | os.PathLike, extra: Sequence[dict] | None = None) -> Path:
        """The released CSV layout (+ item_id, variant_of, variation; + `extra` columns per row)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = [ex.to_dict() | (extra[i] if extra else {}) for i, ex in enumerate(self.examples)]
        header = list(COLUMNS) + ["item_id", *NEXT_COLUMNS]
        for row in rows:
            header += [k for k in row if k not in header]
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
        return path


# ----------------------------------------------------------------------------------------------
# Template expansion


_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def render(template: str, values: dict[str, str], undefined: set | None = None) -> str:
    """`{{NAME}}` substitution as jinja2 does it for these templates: an undefined name renders as ''.

    The original used jinja2's NativeEnvironment; on the released templates (only `{{NAME}}`
    placeholders) it gives byte-identical text (checked on all 14,995 renderings). NativeEnvironment
    would also `literal_eval` a text that is entirely a Python literal (e.g. a fully quoted sentence,
    losing its quotes); no BBNLI text is, and we do not copy that behaviour.
    """

    def sub(match: re.Match) -> str:
        key = match.group(1)
        if key not in values:
            if undefined is not None:
                undefined.add(key)
            return ""
        return str(values[key])

    return _PLACEHOLDER.sub(sub, template)


def expand_template(template: dict, source: str = "") -> tuple[list[BBNLIExample], list[str]]:
    """Expand one template exactly as BBNLI's json2csv.py.

    For each premise index i, for each combination in the Cartesian product of ALL filler lists in
    `data` (in the JSON's key order, even for fillers a premise or hypothesis does not use):
      pro  (GROUP1, GROUP2 as written): premise, every test_hypothesis (type test, bias_label -1), every
           bias_hypothesis_stereotypical (type stereotypical), each with the question at the same index;
      anti (GROUP1 <-> GROUP2 swapped in premise, hypothesis and question): the same rows, the
           stereotypical ones typed `anti-stereotypical`.
    Then exact duplicate rows (all columns) are dropped, keeping the first, order preserved. Unused
    fillers therefore only create duplicates that are dropped; fillers used in a question but not in its
    hypothesis keep several rows with the same (premise, hypothesis) that differ in `question` only.
    Only GROUP1[0] and GROUP2[0] are used (every released template has one of each). `name` has spaces
    replaced by underscores; `id` is the premise index as two digits; reference[i] goes with premise i.
    Returns (examples, notes).
    """
    where = source or template.get("name", "?")
    for key in ("premise", "test_hypothesis", "bias_hypothesis_stereotypical", "test_question",
                "bias_question_stereotypical", "GROUP1", "GROUP2", "name", "domain"):
        if key not in template:
            raise InputError(f"BBNLI template {where} lacks the key {key!r}")
    if len(template["test_question"]) != len(template["test_hypothesis"]):
        raise InputError(f"{where}: test_question and test_hypothesis must have the same length")
    if len(template["bias_question_stereotypical"]) != len(template["bias_hypothesis_stereotypical"]):
        raise InputError(f"{where}: bias_question_stereotypical and bias_hypothesis_stereotypical must have the same length")
    references = list(template.get("reference", []))
    if len(references) < len(template["premise"]):
        raise InputError(f"{where}: needs one reference per premise ({len(template['premise'])}); has {len(references)}")
    group1, group2 = template["GROUP1"][0], template["GROUP2"][0]
    data = dict(template.get("data", {}))
    name = template["name"].replace(" ", "_")
    domain = template["domain"]
    undefined: set[str] = set()

    rows: list[tuple] = []
    for index, premise in enumerate(template["premise"]):
        pid = f"{index:02}"
        for combination in itertools.product(*data.values()):
            for condition, (g1, g2) in (("pro", (group1, group2)), ("anti", (group2, group1))):
                values = dict(zip(data.keys(), combination), GROUP1=g1, GROUP2=g2)
                premise_text = render(premise, values, undefined)
                common = (domain, name, pid, condition, f"{name}_{condition}_{pid}", premise_text)
                for (hyp, label), (question, *_) in zip(template["test_hypothesis"], template["test_question"]):
                    rows.append(common + ("test", render(hyp, values, undefined), render(question, values, undefined),
                                          int(label), -1, references[index]))
                stereo = "stereotypical" if condition == "pro" else "anti-stereotypical"
                for (hyp, label, bias_label), (question, *_) in zip(template["bias_hypothesis_stereotypical"],
                                                                    template["bias_question_stereotypical"]):
                    rows.append(common + (stereo, render(hyp, values, undefined), render(question, values, undefined),
                                          int(label), int(bias_label), references[index]))
    unique = list(dict.fromkeys(rows))  # pandas drop_duplicates(): keep first, preserve order
    notes = []
    if undefined:
        notes.append(f"{where}: placeholder(s) {sorted(undefined)} are not defined in `data`; rendered as '' "
                     "(as jinja2 does in the original expansion)")
    return [BBNLIExample(*row) for row in unique], notes


def load_templates(folder: str | os.PathLike) -> BBNLIDataset:
    """Every `*.json` template under `folder` (recursively), in sorted path order, expanded.

    Sorted order (gender/, race/, religion/, then file names) is the row order of the released
    bbnli_expanded.csv, which concatenates the per-template CSVs that way.
    """
    folder = Path(folder)
    files = sorted(folder.rglob("*.json"))
    if not files:
        raise InputError(f"no BBNLI template *.json files under {folder}: pass the folder data/bbnli/ of "
                         "github.com/feyzaakyurek/bbnli (or one of its domain folders), or an expanded .csv")
    examples, notes = [], []
    for file in files:
        rows, file_notes = load_template_file(file, source=str(file.relative_to(folder)))
        examples += rows
        notes += file_notes
    if not examples:
        raise InputError(f"the BBNLI templates under {folder} expand to no rows (no premises / hypotheses)")
    return BBNLIDataset(examples, source=str(folder), notes=notes)


def load_template_file(path: Path, source: str) -> tuple[list[BBNLIExample], list[str]]:
    """One template JSON file, expanded; a syntax error or a malformed template names the file (and line)."""
    try:
        template = json.loads(read_text(path, "BBNLI template"))
    except json.JSONDecodeError as err:
        raise InputError(f"BBNLI template {path}: line {err.lineno}, column {err.colno}: not valid JSON "
                         f"({err.msg})") from None
    if not isinstance(template, dict):
        raise InputError(f"BBNLI template {path}: expected a JSON object with premise, test_hypothesis, ... keys; "
                         f"got a {type(template).__name__}")
    try:
        return expand_template(template, source=source)
    except InputError:
        raise
    except (ValueError, TypeError, KeyError) as err:  # e.g. a label that is not a number, a malformed list
        raise InputError(f"BBNLI template {path}: {type(err).__name__}: {err}") from None


# ----------------------------------------------------------------------------------------------
# CSV / Hub


def _int(value, column: str, where: str) -> int:
    try:
        number = float(str(value).strip())
        if number != int(number):
            raise ValueError
        return int(number)
    except (TypeError, ValueError, OverflowError):  # OverflowError: "inf"
        raise InputError(f"{where}: column {column!r} must be an integer label; got {value!r}") from None


def example_from_row(row: dict, where: str = "row") -> BBNLIExample:
    """One `BBNLIExample` from a dict with the released CSV's columns (extra columns ignored)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in row]
    if missing:
        raise InputError(f"{where}: missing column(s) {missing}; a BBNLI CSV needs {list(COLUMNS)}")
    text = {k: ("" if row.get(k) is None else str(row.get(k))) for k in COLUMNS + NEXT_COLUMNS}
    ident = text["id"].strip()
    if ident.isdigit():
        ident = f"{int(ident):02}"  # tools that read the CSV as numbers turn "00" into 0
    unique_id = text["unique_id"] or f"{text['name']}_{text['type']}_{ident}"
    try:
        return _example(text, ident, unique_id, where)
    except InputError as err:  # BBNLIExample's own checks name the row id, not where it is
        raise InputError(f"{where}: {err}") from None


def _example(text: dict, ident: str, unique_id: str, where: str) -> BBNLIExample:
    return BBNLIExample(
        domain=text["domain"], name=text["name"], id=ident, type=text["type"], unique_id=unique_id,
        premise=text["premise"], hypothesis_type=text["hypothesis_type"], hypothesis=text["hypothesis"],
        question=text["question"], true_label=_int(text["true_label"], "true_label", where),
        bias_label=_int(text["bias_label"], "bias_label", where), reference=text["reference"],
        variant_of=text["variant_of"], variation=text["variation"],
    )


def read_csv_rows(path: str | os.PathLike, what: str = "BBNLI CSV") -> tuple[list[str], list[tuple[int, dict]]]:
    """(header, [(line number, row)]) of a UTF-8 CSV. An empty file, or a row the csv module cannot parse,
    is an InputError naming the file (and line)."""
    path = Path(path)
    text = read_text(path, what)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in reader.fieldnames or []]
        reader.fieldnames = header
        rows = [(reader.line_num, row) for row in reader]
    except csv.Error as err:
        raise InputError(f"{what} {path}: line {reader.line_num}: not readable as CSV ({err})") from None
    if not header:
        raise InputError(f"{what} {path} is empty: it needs a header row with the columns {list(COLUMNS)} "
                         "and one row per NLI pair")
    return header, rows


def load_csv(path: str | os.PathLike) -> BBNLIDataset:
    """The expanded CSV layout (extra columns such as `Unnamed: 0`, `index`, `Domain` are ignored).

    A BBNLI-next validation export (it has a `valid` column) is imported through
    `fairalign.eval.bbnli.next_build.import_validated`, which keeps only rows marked valid.
    The header must name every required column and at least one row must follow it.
    """
    path = Path(path)
    header, rows = read_csv_rows(path)
    if "valid" in header:
        from fairalign.eval.bbnli.next_build import import_validated

        return import_validated(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise InputError(f"BBNLI CSV {path}: missing column(s) {missing} in the header (found {header}); a BBNLI CSV "
                         f"has the columns {list(COLUMNS)}, as the released bbnli_expanded.csv")
    if not rows:
        raise InputError(f"BBNLI CSV {path} has a header but no rows: nothing to evaluate")
    examples = [example_from_row(row, f"{path.name} line {line}") for line, row in rows]
    return BBNLIDataset(examples, source=str(path))


def load_hub(hub_id: str = HUB_ID, split: str = "test", revision: str | None = None) -> BBNLIDataset:
    """The Hub copy of the expanded CSV. Offline (HF_DATASETS_OFFLINE/HF_HUB_OFFLINE) is a clear error."""
    offline = [v for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE") if os.environ.get(v, "").lower() in ("1", "true", "yes", "on")]
    if offline:
        raise RuntimeError(
            f"cannot load the Hub dataset {hub_id!r}: {'/'.join(offline)} is set (offline). Pass a local path instead: "
            "the released bbnli_expanded.csv or the template folder data/bbnli/ from github.com/feyzaakyurek/bbnli "
            f"({DEMO!r} runs fairalign's demo probes: a pipeline check, not a benchmark)."
        )
    from datasets import load_dataset

    try:
        ds = load_dataset(hub_id, split=split, revision=revision)
    except Exception as err:  # network, auth, missing split: all end the same way for the user
        raise RuntimeError(f"could not load the Hub dataset {hub_id!r} (split {split!r}): {err}. "
                           "Pass a local path to bbnli_expanded.csv or the template folder instead.") from err
    examples = [example_from_row(row, f"{hub_id} row {i}") for i, row in enumerate(ds)]
    return BBNLIDataset(examples, source=f"hf://{hub_id}@{revision or 'main'}:{split}")


def demo_probes_path() -> Path:
    """The demo probe set shipped with fairalign (BBNLI's CSV layout; written by scripts/make_demo_probes.py)."""
    return RESOURCES / "demo_probes.csv"


def load_bbnli(path: str | os.PathLike = HUB_ID, *, drop_duplicate_pairs: bool = False) -> BBNLIDataset:
    """Load BBNLI or a BBNLI-next-style dataset from a template folder, a CSV, or the Hub.

    path: a folder of template JSON files (expanded like the original), a `.csv` file (expanded layout,
    validation.csv, or a BBNLI-next export marked by validators), a Hub id (`feyzaakyurek/BBNLI`), or "demo"
    (the shipped demo probe set, read and checked as any CSV; its notes start with `DEMO_NOTE`).
    drop_duplicate_pairs: keep one row per (condition, hypothesis type, premise, hypothesis, labels).
    The released data has 450 rows that repeat such a pair and differ only in the QA `question`
    (a filler used in the question but not in the hypothesis); the original NLI scores count them all,
    so the default keeps them.
    """
    local = demo_probes_path() if isinstance(path, str) and path == DEMO else Path(path).expanduser()
    if local.is_dir():
        dataset = load_templates(local)
    elif local.is_file():
        if local.suffix.lower() == ".json":
            rows, notes = load_template_file(local, source=local.name)
            if not rows:
                raise InputError(f"BBNLI template {local} expands to no rows (no premises / hypotheses)")
            dataset = BBNLIDataset(rows, source=str(local), notes=notes)
        else:
            dataset = load_csv(local)
    elif could_be_hub_id(str(path)):
        dataset = load_hub(str(path))
    else:
        what = "does not exist" if not local.exists() else "is neither a file nor a folder"
        raise MissingPathError(f"BBNLI data not found at {str(path)!r} (it {what}): pass a template folder, an "
                               f"expanded .csv, the Hub id {HUB_ID!r}, or {DEMO!r} (demo probes, not a benchmark)")
    if local.is_file() and local.resolve() == demo_probes_path():  # by name or by path: never mistaken for BBNLI
        dataset.notes.insert(0, DEMO_NOTE.format(rows=len(dataset)))
    if drop_duplicate_pairs:
        seen, kept = set(), []
        for ex in dataset:
            key = (ex.name, ex.type, ex.hypothesis_type, ex.premise, ex.hypothesis, ex.true_label, ex.bias_label,
                   ex.variant_of, ex.variation)
            if key not in seen:
                seen.add(key)
                kept.append(ex)
        dropped = len(dataset) - len(kept)
        dataset = BBNLIDataset(kept, dataset.source, dataset.notes + [f"dropped {dropped} duplicate NLI pair(s)"])
    return dataset


def with_variation(example: BBNLIExample, *, premise: str | None = None, hypothesis: str | None = None,
                   variation: str, question: str | None = None) -> BBNLIExample:
    """A BBNLI-next row: `example` with a new premise and/or hypothesis, pointing back at it."""
    return replace(
        example,
        premise=example.premise if premise is None else premise,
        hypothesis=example.hypothesis if hypothesis is None else hypothesis,
        question=example.question if question is None else question,
        variant_of=example.item_id,
        variation=variation,
    )


def concat(datasets: Iterable[BBNLIDataset]) -> BBNLIDataset:
    datasets = list(datasets)
    if not datasets:
        raise ValueError("concat needs at least one dataset")
    out = datasets[0]
    for ds in datasets[1:]:
        out = out.concat(ds)
    return out
