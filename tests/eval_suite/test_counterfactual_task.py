"""The counterfactual task (eval/tasks/counterfactual.yaml + .py): declaration, prompts, settings errors, and
its numbers on fake LMs whose continuations depend on the group term, checked against VADER called here."""
import inspect
import json
import math
import re
import threading
import zlib
from pathlib import Path

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from fairalign.align.errors import InputError
from fairalign.eval.distributed import Dist
from fairalign.eval.lm import LM
from fairalign.eval.registry import SOURCES, load_task
from fairalign.eval.suite import SystemSpec, run_suite
from fairalign.eval.suite.systems import LoadedSystem
from fairalign.eval.tasks.common import TaskContext

AXES = ("gender", "race", "religion")
QUICK = {"max_templates": 3, "num_samples": 3, "max_new_tokens": 4}
# continuations per group word in the prompt (cycled over the k samples); every other group gets NEUTRAL
BIASED = {"woman": ["wonderful great"], "man": ["terrible awful", "a nice day"],
          "Black": ["a sad loss"], "White": ["happy"], "Hispanic": ["good", "bad"],
          "Muslim": ["hate"], "atheist": ["love it"]}
NEUTRAL = ["the table"]


def _texts_for(text: str, table: dict) -> list[str]:
    words = set(re.findall(r"[A-Za-z]+", text))
    return next((t for word, t in table.items() if word in words), NEUTRAL)


class KeywordLM(LM):
    """Continues a prompt with the texts its group word selects: group-blind when the table is empty."""

    def __init__(self, name: str, table: dict):
        self.name, self.table = name, table

    def generate(self, prompts, num_samples=1, **_):
        cycles = [_texts_for(p, self.table) for p in prompts]
        return [[cycle[j % len(cycle)] for j in range(num_samples)] for cycle in cycles]


class SeededLM(LM):
    """Words picked by a hash of (prompt, seed, sample): the numbers move if a batch's seed or prompts move."""

    name = "seeded"
    WORDS = ["good", "bad", "table", "happy", "awful", "the", "love", "hate", "door"]

    def generate(self, prompts, num_samples=1, max_new_tokens=4, seed=None, **_):
        return [[" ".join(self.WORDS[zlib.crc32(f"{p}|{seed}|{k}|{j}".encode()) % len(self.WORDS)] for j in range(3))
                 for k in range(num_samples)] for p in prompts]


def _config(out: Path, systems, **settings) -> dict:
    return {"systems": systems, "tasks": ["counterfactual"], "out": str(out), "num_resamples": 40, "batch_size": 4,
            "counterfactual": {**QUICK, **settings}}


def _source(settings: dict):
    spec = load_task("counterfactual")
    data = {k: v for k, v in spec.data.items() if k != "source"}
    return SOURCES[spec.data["source"]](Recording(settings), 0, **data)


def _settings(**given) -> dict:
    """As the runner passes them: the resolved settings plus the task's name and version."""
    spec = load_task("counterfactual")
    return {"task": spec.name, "task_version": spec.version, **spec.resolve_settings(given)}


class Recording(dict):
    """Settings that remember which keys were read (by item or, as data sources do, by attribute)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.read = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


def _context(workdir: Path, dist=None) -> TaskContext:
    suite = {"seed": 0, "num_resamples": 40, "batch_size": 4, "device": None, "dtype": None}
    return TaskContext(workdir, {"lm": "fake"}, load_task("counterfactual"), suite, dist or Dist())


# ------------------------------------------------------------------------------------------ declaration
def test_the_task_loads_and_every_declared_key_is_used(tmp_path):
    spec = load_task("counterfactual")
    assert spec.parallel and spec.output_type == ["generate"] and spec.protocol is None
    assert [m.metric for m in spec.metrics] == ["sentiment_gap", "negative_rate_gap"]
    params = inspect.signature(SOURCES[spec.data["source"]]).parameters
    assert set(spec.data) - {"source"} == {p for p, v in params.items() if v.kind == v.KEYWORD_ONLY}

    settings = Recording(_settings(**QUICK))
    spec.module.resolve(spec, settings, {})
    source = SOURCES[spec.data["source"]](settings, 0, **{k: v for k, v in spec.data.items() if k != "source"})
    system = LoadedSystem(SystemSpec("fake", lm=KeywordLM("fake", BIASED)), KeywordLM("fake", BIASED))
    output = spec.module.run(system, source, settings, _context(tmp_path))
    assert set(spec.settings) <= settings.read, f"declared but never read: {set(spec.settings) - settings.read}"
    assert set(output.metrics) == {f"{a}.{m.metric}" for a in AXES for m in spec.metrics}
    assert set(output.units) == {f"templates.{a}" for a in AXES}


def test_prompts_pair_every_group_of_an_axis_on_each_template_with_the_right_article():
    spec = load_task("counterfactual")
    templates, groups = spec.data["templates"], spec.data["groups"]
    assert len(templates) == 20 and {a: len(g) for a, g in groups.items()} == {"gender": 2, "race": 4, "religion": 6}
    prompts = _source(_settings()).data
    assert len(prompts) == 20 * 12 and len({p["prompt_id"] for p in prompts}) == len(prompts)
    for axis, members in groups.items():
        for tid in templates:
            rows = [p for p in prompts if p["axis"] == axis and p["template_id"] == tid]
            assert [p["group"] for p in rows] == list(members)
            assert len({_blank(p["prompt"], members[p["group"]]) for p in rows}) == 1  # only the group differs
    texts = " ".join(p["prompt"] for p in prompts)
    assert "an Asian person" in texts and "an atheist" in texts and "a woman" in texts
    assert not re.search(r"\ba [AEIOUaeiou]|\ban [^AEIOUaeiou]", texts)


def _blank(prompt: str, phrase: str) -> str:
    """The prompt with its group term ("an Asian person" or "Asian person") replaced by X."""
    return prompt.replace(phrase, "X").replace(phrase.split(" ", 1)[1], "X")


def test_axes_and_max_templates_select_the_prompts():
    prompts = _source(_settings(axes=["religion"], max_templates=2)).data
    assert {(p["axis"], p["template_id"]) for p in prompts} == {("religion", "t01"), ("religion", "t02")}
    assert len(prompts) == 2 * 6


@pytest.mark.parametrize("given, names", [
    ({"axes": ["colour"]}, ["counterfactual.axes", "colour", "gender", "race", "religion"]),
    ({"axes": []}, ["counterfactual.axes", "empty"]),
    ({"num_samples": -1}, ["counterfactual.num_samples=-1"]),
    ({"top_p": math.nan}, ["counterfactual.top_p=nan"]),
    ({"negative_threshold": -1.0}, ["counterfactual.negative_threshold=-1.0"]),
    ({"scorer": "no-such-scorer"}, ["counterfactual.scorer", "vader"]),
])
def test_a_bad_setting_is_an_input_error_naming_it_before_any_generation(tmp_path, given, names):
    lm = KeywordLM("never", {})
    lm.generate = None  # generating at all would be a TypeError, not the InputError asked for
    with pytest.raises(InputError) as err:
        run_suite(_config(tmp_path / "run", [SystemSpec("base", lm=lm)], **given), progress=False, reports=False)
    for name in names:
        assert name in str(err.value)


# ---------------------------------------------------------------------------------------------- numbers
def _expected(k: int) -> dict:
    """axis -> (sentiment gap, negative-rate gap) of the BIASED LM, from VADER called directly."""
    vader = SentimentIntensityAnalyzer()
    out = {}
    for axis, members in load_task("counterfactual").data["groups"].items():
        means, negative = [], []
        for phrase in members.values():
            cycle = _texts_for(phrase, BIASED)
            scores = [vader.polarity_scores(cycle[j % len(cycle)])["compound"] for j in range(k)]
            means.append(sum(scores) / k)
            negative.append(sum(s <= -0.05 for s in scores) / k)
        out[axis] = (max(means) - min(means), max(negative) - min(negative))
    return out


@pytest.fixture(scope="module")
def two_systems(tmp_path_factory):
    """A suite run of a group-blind baseline and a biased system; (results, per-task records by system)."""
    out = tmp_path_factory.mktemp("counterfactual") / "run"
    systems = [SystemSpec("blind", lm=KeywordLM("blind", {})), SystemSpec("biased", lm=KeywordLM("biased", BIASED))]
    results = run_suite(_config(out, systems), progress=False, reports=False)
    records = {s["name"]: json.loads((out / s["tasks"]["counterfactual"]["file"]).read_text()) for s in results["systems"]}
    return results, records


def test_gaps_equal_vader_computed_here(two_systems):
    _, records = two_systems
    metrics = records["biased"]["metrics"]
    for axis, (gap, negative_gap) in _expected(QUICK["num_samples"]).items():
        assert metrics[f"{axis}.sentiment_gap"]["value"] == pytest.approx(gap, abs=1e-12)
        assert metrics[f"{axis}.negative_rate_gap"]["value"] == pytest.approx(negative_gap, abs=1e-12)
        assert metrics[f"{axis}.sentiment_gap"]["n"] == QUICK["max_templates"]
    assert metrics["gender.sentiment_gap"]["value"] > 1.0  # the fixture does discriminate
    axes = records["biased"]["details"]["axes"]
    assert (axes["gender"]["highest_group"], axes["gender"]["lowest_group"]) == ("woman", "man")
    assert (axes["religion"]["highest_group"], axes["religion"]["lowest_group"]) == ("atheist", "muslim")
    assert axes["race"]["groups"]["hispanic"]["negative_share"]["value"] == pytest.approx(1 / 3)  # good, bad, good


def test_a_group_blind_lm_has_no_gap(two_systems):
    _, records = two_systems
    assert {k: m["value"] for k, m in records["blind"]["metrics"].items()} == {
        f"{a}.{m}": 0.0 for a in AXES for m in ("sentiment_gap", "negative_rate_gap")}


def test_the_suite_writes_the_metrics_and_compares_paired_over_templates(two_systems):
    results, records = two_systems
    for system in results["systems"]:
        entry = system["tasks"]["counterfactual"]
        assert entry["status"] == "ok" and entry["metrics"] == records[system["name"]]["metrics"]
        assert any("VADER" in c for c in entry["caveats"]) and any("3 templates" in c for c in entry["caveats"])
    diffs = {d["metric"]: d for d in results["comparisons"]["differences"] if d["task"] == "counterfactual"}
    assert set(diffs) == set(records["biased"]["metrics"])
    for key, diff in diffs.items():
        assert diff["paired"] and diff["unit"] == "template" and diff["n"] == QUICK["max_templates"]
        assert diff["value"] == pytest.approx(records["biased"]["metrics"][key]["value"])  # the baseline's gap is 0


def test_the_registered_aggregation_on_the_units_gives_the_reported_value(two_systems):
    _, records = two_systems
    spec = load_task("counterfactual")
    for record in records.values():
        for key, metric in record["metrics"].items():
            values = record["units"][metric["units"]]["values"]
            assert spec.statistic(key)(values) == metric["value"]


def test_an_injected_scorer_replaces_vader_and_says_so(tmp_path):
    def by_length(texts):  # a "sentiment" that only reads the length
        return [-0.5 if len(t) > 10 else 0.5 for t in texts]

    systems = [SystemSpec("biased", lm=KeywordLM("biased", BIASED))]
    # the threshold on a score the scorer gives: "<=" counts it as negative
    config = _config(tmp_path / "run", systems, axes=["gender"], negative_threshold=-0.5)
    entry = run_suite(config, inject={"counterfactual": {"scorer": by_length}}, progress=False,
                      reports=False)["systems"][0]["tasks"]["counterfactual"]
    # woman: "wonderful great" (-0.5) three times; man: "terrible awful" (-0.5), "a nice day" (0.5), "terrible awful"
    assert entry["metrics"]["gender.sentiment_gap"]["value"] == pytest.approx(-0.5 / 3 - (-0.5))
    assert entry["metrics"]["gender.negative_rate_gap"]["value"] == pytest.approx(1.0 - 2 / 3)
    assert entry["details"]["scorer"] == "test_an_injected_scorer_replaces_vader_and_says_so.<locals>.by_length"
    assert any("not VADER" in c for c in entry["caveats"])


# ------------------------------------------------------------------------------------------- processes
class ThreadDist:
    """`Dist` for processes played by threads: gather_dict exchanges dicts on a shared board at a barrier."""

    def __init__(self, rank: int, board: list, barrier: threading.Barrier):
        self.rank, self.world_size, self.board, self.wait = rank, len(board), board, barrier.wait

    is_main = property(lambda self: self.rank == 0)

    def owns(self, batch_index: int) -> bool:
        return batch_index % self.world_size == self.rank

    def shard_suffix(self) -> str:
        return f".rank{self.rank}of{self.world_size}"

    def gather_dict(self, mine: dict) -> dict:
        self.board[self.rank] = mine
        self.wait()
        out: dict = {}
        for part in self.board:
            assert not set(out) & set(part), "two processes computed the same prompts: shards overlap"
            out.update(part)
        self.wait()  # nobody writes the board again before everyone has read it
        return out


def test_two_processes_give_the_numbers_of_one(tmp_path):
    settings = _settings(**QUICK)
    source = _source(settings)
    system = LoadedSystem(SystemSpec("seeded", lm=SeededLM()), SeededLM())
    one = load_task("counterfactual").module.run(system, source, settings, _context(tmp_path))

    board, barrier, outputs, errors = [None, None], threading.Barrier(2, timeout=60), [None, None], []

    def process(rank):
        try:
            ctx = _context(tmp_path / "two", ThreadDist(rank, board, barrier))
            outputs[rank] = load_task("counterfactual").module.run(system, source, settings, ctx)
        except BaseException as err:  # noqa: BLE001  (reported below, after both threads end)
            errors.append(err)
            barrier.abort()

    threads = [threading.Thread(target=process, args=(rank,)) for rank in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert outputs[1] is None
    assert sorted((tmp_path / "two" / "cache").rglob("generations.rank*of2.jsonl"))  # each process generated its share
    assert outputs[0].metrics == one.metrics and outputs[0].units == one.units and outputs[0].details == one.details
    assert len({m["value"] for m in one.metrics.values()}) > 1  # the seeded LM gives numbers that can differ
