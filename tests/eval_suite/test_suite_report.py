"""Report content: how a difference's interval is read in words, and that both renderings carry the same blocks."""
import math

import pytest

from fairalign.eval.suite.report import fmt_ci, reading
from fairalign.eval.suite.report_html import render_html
from fairalign.eval.suite.report_md import render_markdown
from fairalign.eval.tasks.common import jsonable


@pytest.mark.parametrize("diff, expected", [
    ({"value": -0.1, "low": -0.2, "high": 0.05, "higher_is_better": False, "ideal": 0.0}, "no clear difference (CI contains 0)"),
    ({"value": -0.1, "low": -0.2, "high": -0.01, "higher_is_better": False, "ideal": 0.0}, "lower: better (CI excludes 0)"),
    ({"value": -0.1, "low": -0.2, "high": -0.01, "higher_is_better": True, "ideal": 1.0}, "lower: worse (CI excludes 0)"),
    ({"value": -5.0, "low": -9.0, "high": -1.0, "higher_is_better": False, "ideal": None}, "lower (CI excludes 0)"),
    ({"value": 0.3, "low": 0.1, "high": 0.5, "higher_is_better": None, "ideal": 0.0}, "higher (CI excludes 0)"),
    ({"value": 0.3, "low": None, "high": None, "higher_is_better": True, "ideal": 1.0}, "no interval"),
])
def test_reading_of_a_difference(diff, expected):
    assert reading(diff) == expected


def test_formatting_and_json_cleaning():
    assert fmt_ci({"value": 0.5, "low": 0.25, "high": 0.75}) == "0.5 [0.25, 0.75]"
    assert fmt_ci({"value": 0.5, "low": None, "high": None}) == "0.5" and fmt_ci({"value": None}) == "n/a"
    cleaned = jsonable({"est": {"value": math.nan, "low": None, "high": None, "n": 0}, "xs": [math.inf, 1.0]})
    assert cleaned == {"est": {"value": None, "low": None, "high": None, "n": 0, "level": 0.95}, "xs": [None, 1.0]}


def test_markdown_and_html_render_the_same_blocks():
    blocks = [("h1", "T"), ("banner", "Read <this>", ["demo & proxy"]), ("p", "a <b> & c"),
              ("table", ["x", "y|z"], [["1", "2|3"]]), ("list", ["note"]), ("img", "plot", "cap")]
    md = render_markdown(blocks)
    assert "| x | y\\|z |" in md and "| 1 | 2\\|3 |" in md and "![cap](plots/plot.png)" in md
    assert md.startswith("# T\n\n> **Read <this>**\n>\n> - demo & proxy\n")
    html = render_html(blocks, {"plot": b"\x89PNG fake"})
    assert "a &lt;b&gt; &amp; c" in html and "<td>2|3</td>" in html and 'src="data:image/png;base64,iVBORyBmYWtl"' in html
    assert '<div class="banner" role="note"><strong>Read &lt;this&gt;</strong><ul><li>demo &amp; proxy</li></ul></div>' in html
    with pytest.raises(ValueError, match="unknown report block"):
        render_markdown([("video", "x")])
