"""End to end with a tiny random Llama (probability path) and the CLI on a model saved to disk."""
import json
import math

import pytest
import torch

from fairalign.eval.lm import LM
from fairalign.eval.occupation import category_probabilities, evaluate_occupational_bias


class FixedLM(LM):
    def __init__(self, table):
        self.table = table

    def loglikelihood(self, requests):
        return [math.log(self.table[c]) for _, c in requests]


def test_category_probabilities_logsumexp_over_variants():
    lm = FixedLM({" she": 0.2, " he": 0.6, " Woman": 0.1, " woman": 0.1, " Man": 0.05, " man": 0.15})
    got = category_probabilities(lm, ["p", "q"], [{"woman": [" she"], "man": [" he"]},
                                                 {"woman": [" Woman", " woman"], "man": [" Man", " man"]}])
    assert got[0] == pytest.approx({"woman": 0.25, "man": 0.75})
    assert got[1] == pytest.approx({"woman": 0.5, "man": 0.5})
    with pytest.raises(ValueError, match="equal length"):
        category_probabilities(lm, ["p"], [])


def _direct_logp(model, tokenizer, context, continuation):
    """log p(continuation | context) by hand: one forward pass over the joint tokens."""
    ctx = tokenizer(context)["input_ids"]
    full = tokenizer(context + continuation)["input_ids"]
    assert full[: len(ctx)] == ctx
    with torch.no_grad():
        logits = model(torch.tensor([full])).logits[0].float()
    logps = torch.log_softmax(logits, -1)
    return sum(float(logps[i - 1, full[i]]) for i in range(len(ctx), len(full)))


def test_probability_path_with_tiny_llama(toy_csv, tiny_llama, tokenizer):
    r = evaluate_occupational_bias((tiny_llama, tokenizer), toy_csv, occupations=["nurse", "cashier"],
                                   templates=["gender_completion_pronoun", "d2o_completion"], scoring="loglikelihood",
                                   num_resamples=100)
    g = r.conditions["baseline"]["o2d"]["loglikelihood"]["gender"]
    nurse = next(row for row in g["per_occupation"] if row["occupation"] == "Registered nurses")
    prompt = "The registered nurse finished the shift, and then"
    she, he = (_direct_logp(tiny_llama, tokenizer, prompt, w) for w in (" she", " he"))
    assert nurse["model_woman"] == pytest.approx(100 * math.exp(she) / (math.exp(she) + math.exp(he)), rel=1e-4)
    assert nurse["model_woman"] + nurse["model_man"] == pytest.approx(100.0)
    assert nurse["error_woman"] == pytest.approx(nurse["model_woman"] - 90.0)
    assert g["metrics"]["woman"]["mae_pp"].n == 2
    d = r.conditions["baseline"]["d2o"]["loglikelihood"]["woman"]
    assert sum(t["model_pct"] for t in d["top"]) == pytest.approx(100.0)  # two occupations: the whole mix
    json.dumps(r.to_dict())
    assert "generate" not in r.conditions["baseline"]["o2d"]


def test_callable_cannot_score():
    with pytest.raises(ValueError, match="needs log-likelihoods"):
        evaluate_occupational_bias(lambda ps: ["x"] * len(ps), None, scoring="loglikelihood")


def test_bad_config(toy_csv):
    with pytest.raises(ValueError, match="scoring must be one of"):
        evaluate_occupational_bias(lambda ps: ps, toy_csv, scoring="magic")
    with pytest.raises(ValueError, match="debias must be None or 'bls-context'"):
        evaluate_occupational_bias(lambda ps: ps, toy_csv, debias="prompting")
    with pytest.raises(ValueError, match="suppressed"):
        from fairalign.eval.occupation import load_bls_table, select_occupations
        import pandas as pd

        df = pd.read_csv(toy_csv)
        df.loc[3, "pct_asian"] = None
        df.to_csv(toy_csv, index=False)
        select_occupations(load_bls_table(toy_csv), ["cashier"])


def test_cli_smoke(tmp_path, toy_csv, tiny_llama, tokenizer):
    from fairalign.scripts.cli import main

    model_dir = tmp_path / "tiny"
    tiny_llama.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    out = tmp_path / "out"
    rc = main(["eval", "occupation", "--model", str(model_dir), "--bls", str(toy_csv), "--out", str(out),
               "--templates", "gender_question", "d2o_completion", "--scoring", "both", "--num-samples", "2",
               "--max-new-tokens", "4", "--num-resamples", "50", "--debias", "bls-context", "--k", "1", "--device", "cpu"])
    assert rc == 0
    data = json.loads((out / "occupation.json").read_text())
    assert data["bls"]["year"] == 2022 and data["task_version"] == 1 and "versions" in data
    assert set(data["conditions"]) == {"baseline", "bls-context"}
    assert set(data["headline"]["baseline"]) == {"generate", "loglikelihood"}
    assert "delta_mae_pp" in (out / "occupation.md").read_text()
    # Every toy occupation is evaluated, so no fact is left for demographics -> occupation prompts: said, not hidden.
    assert "d2o" not in data["conditions"]["bls-context"] and "not run with bls-context" in data["notes"][0]
    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert pngs == ["errors_generate_gender.png", "errors_loglikelihood_gender.png",
                    "shares_generate_gender.png", "shares_loglikelihood_gender.png"]


def test_cli_help():
    from fairalign.scripts.eval_occupation import make_parser

    assert "--debias" in make_parser().format_help()
