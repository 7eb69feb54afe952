"""scripts/bench_trainers.py: variants run in-process on a tiny model; ratios only between like options."""
import pytest

from fairalign.scripts.bench_trainers import (
    Turn, compare, format_table, make_parser, parse_variant, resolve_defaults, run_variant,
)


def test_variant_names():
    assert parse_variant("trl") == ("trl", False, False)
    assert parse_variant("ours_pre_compile") == ("ours", True, True)
    for bad in ("theirs", "ours_fast", "trl_pre_pre"):
        with pytest.raises(ValueError, match=bad):
            parse_variant(bad)


def test_tiny_runs_compare_like_with_like():
    args = resolve_defaults(make_parser().parse_args(
        ["--model", "tiny", "--quick", "--batch", "2", "--steps", "2", "--prompt_words", "6", "--completion_words", "4"]))

    class CountingTurn(Turn):  # what the parent's lockstep relies on: set-up, train() to step 1, each step, the end
        calls = []

        def wait(self):
            self.calls.append("wait")

        def done(self):
            self.calls.append("done")

    turn = CountingTurn()
    runs = [dict(run_variant(args, v, "lora", turn if v == "ours" else None), repeat=0)
            for v in ("trl", "ours", "trl_pre", "ours_pre")]
    assert turn.calls == ["wait", "done"] + ["wait", "done"] * (2 + 2) + ["wait"]
    by_name = {r["variant"]: r for r in runs}
    # the precompute pass is timed on both sides and only where asked for; end-to-end includes it
    assert by_name["trl_pre"]["precompute_s"] > 0 and by_name["ours_pre"]["precompute_s"] > 0
    assert by_name["trl"]["precompute_s"] == by_name["ours"]["precompute_s"] == 0
    for r in runs:
        assert r["end_to_end_s"] == pytest.approx(r["precompute_s"] + r["train_s"])
        assert len(r["losses"]) == len(r["margins"]) == len(r["batch_shapes"]) == 4  # 2 warm-up + 2 timed steps
    # same logical tokens; TRL pads 2 rows per pair, ours packs one
    assert len({r["tokens_per_step"] for r in runs}) == 1
    assert by_name["trl"]["batch_shapes"][0][0] == 4 and by_name["ours"]["batch_shapes"][0][0] == 2
    # a precomputed reference gives the losses of the reference run each step (LoRA: the base model)
    assert by_name["ours_pre"]["losses"] == pytest.approx(by_name["ours"]["losses"], abs=1e-5)
    assert by_name["trl_pre"]["losses"] == pytest.approx(by_name["trl"]["losses"], abs=1e-5)

    groups = compare(runs)
    assert [g["options"] for g in groups] == ["LoRA r16, ref. each step", "LoRA r16, ref. precomputed"]
    assert all(g["same_loss"] and set(g["sides"]) == {"trl", "ours"} for g in groups)
    assert min(abs(r["margins"][-1]) for r in runs) > 0  # the loss check compares trained steps, not only zeros
    table = format_table(groups, cuda=False)
    assert table.count("**ours / TRL**") == 2 and "ref. precomputed | TRL" in table


def _fake(variant, losses, repeat=0, tokens_per_s=100.0, step_s_all=None):
    side, pre, compiled = parse_variant(variant)
    return {"variant": variant, "side": side, "mode": "lora", "precompute": pre, "compile": compiled, "repeat": repeat,
            "dtype": "float32", "lockstep": step_s_all is not None, "step_s_all": step_s_all,
            "step_s": 1.0, "tokens_per_s": tokens_per_s, "precompute_s": 2.0 if pre else 0.0,
            "end_to_end_tokens_per_s": 50.0, "peak_rss_mb": 1000.0, "rss_growth_mb": 100.0, "tokens_per_step": 10,
            "batch_shapes": [[2, 5]], "losses": losses, "margins": [0.0] * len(losses)}


def test_compare_never_crosses_options_and_flags_different_losses():
    # TRL without precompute and ours with it: two groups, one side each, no ratio
    groups = compare([_fake("trl", [0.69]), _fake("ours_pre", [0.69])])
    assert len(groups) == 2 and not any("ours_over_trl" in g for g in groups)
    # ratios pair runs of the same repeat: (300/100, 100/200) -> median 1.75, range 0.5..3
    runs = [_fake("trl", [0.69], 0, 100.0), _fake("ours", [0.69], 0, 300.0),
            _fake("trl", [0.69], 1, 200.0), _fake("ours", [0.69], 1, 100.0)]
    ratio = compare(runs)[0]["ours_over_trl"]["tokens_per_s"]
    assert (ratio["median"], ratio["min"], ratio["max"]) == (1.75, 0.5, 3.0)
    assert compare([_fake("trl", [0.69, 0.68]), _fake("ours", [0.69, 0.60])])[0]["same_loss"] is False


def test_lockstep_ratio_is_over_paired_steps():
    # after 2 warm-up steps TRL takes 2 s where ours takes 1 s, but a burst of load hits TRL's last step: the
    # paired-step median stays 2 (the ratio of the runs' mean step times would say 8)
    runs = [_fake("trl", [0.69], 0, 1 / 8, [9, 9, 2, 2, 20]), _fake("ours", [0.69], 0, 1.0, [9, 9, 1, 1, 1])]
    ratio = compare(runs)[0]["ours_over_trl"]["tokens_per_s"]
    assert ratio["paired_steps"] and ratio["n"] == 3 and ratio["median"] == 2.0
    assert "2.00× (quartiles 2.00×–11.00×, 3 paired steps)" in format_table(compare(runs), cuda=False)
