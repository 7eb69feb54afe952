"""scripts/repro/harness.py: the intervals, the doc blocks, and that the committed tables are the JSON's."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from fairalign.scripts.repro import harness
from fairalign.scripts.repro.run_all import reproductions


def test_mean_ci_is_the_student_t_interval():
    values = [0.31, 0.45, 0.38, 0.29]
    want = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    got = harness.mean_ci(values)
    assert (got["low"], got["high"]) == pytest.approx(want, rel=1e-12) and got["n"] == 4
    assert harness.mean_ci([0.5]) == {"mean": 0.5, "low": 0.5, "high": 0.5, "n": 1}
    with pytest.raises(ValueError, match="NaN"):
        harness.mean_ci([0.1, math.nan])


def test_replace_block_rewrites_only_its_block_and_refuses_a_missing_marker():
    text = "a\n<!-- repro:x -->\nold\n<!-- /repro:x -->\nb\n<!-- repro:y -->\nkeep\n<!-- /repro:y -->\n"
    out = harness.replace_block(text, "x", "| new |", "doc.md")
    assert "| new |" in out and "old" not in out and "keep" in out and out.startswith("a\n")
    with pytest.raises(ValueError, match="doc.md has no block <!-- repro:z -->"):
        harness.replace_block(text, "z", "t", "doc.md")


def test_every_reproduction_has_a_block_in_the_doc():
    text = harness.DOC.read_text(encoding="utf-8")
    for name in reproductions():
        assert f"<!-- repro:{name} -->" in text, name


@pytest.mark.parametrize("name", sorted(reproductions()))
def test_the_docs_tables_are_the_committed_jsons(name):
    """The numbers in docs/reproductions.md are exactly what --rebuild makes of docs/repro/<name>.json."""
    path = harness.RESULTS / f"{name}.json"
    if not path.is_file():
        pytest.skip(f"{path} not committed yet (no full run)")
    results = json.loads(path.read_text(encoding="utf-8"))
    text = harness.DOC.read_text(encoding="utf-8")
    for key, body in reproductions()[name].tables(results).items():
        assert harness.replace_block(text, key, body, "doc") == text, f"docs/reproductions.md's {key} block is stale"
