"""The fixed inputs of the old-vs-new test (test_registry_same_numbers.py): a deterministic fake LM whose
generations and log-likelihoods are pure functions of the text (no float model arithmetic, so the numbers
are the same on every CPU), a hash scorer and a hash BBNLI predictor, over the suite's toy data.

golden/suite_v1.json was written by the pipeline of commit e099299 (before the task registry); suite_v2.json by
the registry pipeline once the intervals of proportions near 0 and 1 became Wilson intervals and comparisons
gained p-values and Holm's adjustment. `python tests/eval_suite/registry_golden.py` rewrites suite_v2.json:
do it only when a change is meant to move the numbers, and say so.
"""
import json
import sys
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: toy_files
from fairalign.eval.lm import LM

HERE = Path(__file__).resolve().parent
GOLDEN_V1 = HERE / "golden" / "suite_v1.json"  # the pipeline before the registry (commit e099299)
GOLDEN = HERE / "golden" / "suite_v2.json"  # v1 + intervals that behave at 0 and 1, p-values and Holm
WORDS = ["he", "she", "woman", "man", "damn", "nurse", "White", "Black", "Asian", "yes", "no", "entailment",
         "neutral", "contradiction", "true", "false", "maybe", "the", "a", "works", "as", "teacher", "idiot", "kind"]


def _h(*parts) -> int:
    return zlib.crc32("\x1f".join(map(str, parts)).encode())


class HashLM(LM):
    """generate: words picked by a hash of (prompt, seed, sample, position); loglikelihood: a hash of the pair."""

    def __init__(self, name: str):
        self.name = name

    def generate(self, prompts, num_samples=1, max_new_tokens=20, do_sample=True, top_p=1.0, temperature=1.0, seed=None):
        out = []
        for p in prompts:
            rows = []
            for k in range(num_samples):
                n = 1 + _h(self.name, p, seed, k) % max(1, min(max_new_tokens, 6))
                rows.append(" " + " ".join(WORDS[_h(self.name, p, seed, k, j) % len(WORDS)] for j in range(n)))
            out.append(rows)
        return out

    def loglikelihood(self, requests):
        return [-(_h(self.name, c, x) % 10000) / 1000.0 for c, x in requests]


def golden_config(tmp: Path) -> dict:
    sys.path.insert(0, str(HERE))
    from suite_helpers import suite_dict

    from fairalign.eval.suite import SystemSpec

    systems = [SystemSpec("base", lm=HashLM("base")), SystemSpec("other", lm=HashLM("other"))]
    return suite_dict(tmp, None, systems, toxicity={"ppl_model": "none"})


def run_golden(tmp: Path) -> dict:
    """The sections of a run that the computation determines, keyed system/task."""
    sys.path.insert(0, str(HERE))
    from suite_helpers import CountingPredictorFactory, CountingScorer

    from fairalign.eval.suite import run_suite

    results = run_suite(golden_config(tmp), scorer=CountingScorer(), bbnli_predictor=None, progress=False,
                        reports=False)
    out = {"comparisons": results["comparisons"]["differences"], "tasks": {}}
    for system in results["systems"]:
        for task, entry in system["tasks"].items():
            record = json.loads((Path(results["out_dir"]) / entry["file"]).read_text())
            out["tasks"][f"{system['name']}/{task}"] = {k: record[k] for k in ("metrics", "units", "details", "notes")}
    return json.loads(json.dumps(out).replace(str(tmp), "<tmp>"))  # data paths: the same on every run


def canonical(obj) -> str:
    return json.dumps(obj, indent=1, sort_keys=True)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        GOLDEN.write_text(canonical(run_golden(Path(tmp))) + "\n")
    print(f"wrote {GOLDEN}")
