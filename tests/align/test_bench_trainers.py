"""scripts/bench_trainers.py: variants run in-process on a tiny model; ratios only between like options; model
FLOPs and MFU (scripts/model_flops.py) against hand computations."""
import pytest

from fairalign.scripts import model_flops
from fairalign.scripts.bench_trainers import (
    Turn, compare, format_table, make_parser, parse_variant, resolve_defaults, run_variant,
)

# The llama3-tiny shape (scripts/bench_shapes.py) by hand: 2 layers of q, o (64x64), k, v (64x32), gate, up, down
# (64x256) and 2 norms of 64, the final norm, the tied 512x64 embedding as LM head; LoRA r16 on every linear layer
# (r x (in + out) each); 6-token prompts, 4-token answers
TINY_N = 2 * (2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 256 + 2 * 64) + 64 + 512 * 64
TINY_LORA = 2 * 16 * (2 * (64 + 64) + 2 * (64 + 32) + 3 * (64 + 256))
TINY_ATTN_FWD = 4 * 2 * 64 * 10  # 4 L d s


def test_variant_names():
    assert parse_variant("trl") == ("trl", False, False)
    assert parse_variant("ours_pre_compile") == ("ours", True, True)
    for bad in ("theirs", "ours_fast", "trl_pre_pre"):
        with pytest.raises(ValueError, match=bad):
            parse_variant(bad)


def test_tiny_runs_compare_like_with_like():
    args = resolve_defaults(make_parser().parse_args(
        ["--shape", "llama3-tiny", "--batch", "2", "--steps", "2", "--prompt_tokens", "6", "--completion_tokens", "4"]))

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
    # same logical tokens (2 pairs x 2 sequences x (6 + 4) tokens); TRL pads 2 rows per pair, ours packs one
    assert {r["tokens_per_step"] for r in runs} == {40}
    # model FLOPs per token, LoRA: 4N + 3 x attention + 6A, + the reference forward 2N + attention where it runs
    lora_policy = 4 * TINY_N + 3 * TINY_ATTN_FWD + 6 * TINY_LORA
    assert {r["matmul_params"] for r in runs} == {TINY_N} and {r["adapter_params"] for r in runs} == {TINY_LORA}
    assert by_name["ours"]["model_flops_per_token"] == by_name["trl"]["model_flops_per_token"] == (
        lora_policy + 2 * TINY_N + TINY_ATTN_FWD)
    assert by_name["ours_pre"]["model_flops_per_token"] == by_name["trl_pre"]["model_flops_per_token"] == lora_policy
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


def test_a_ratio_over_a_zero_denominator_is_left_out_not_a_crash():
    # RSS growth is 0 when the process's peak predates the run (runs sharing a process, as in the test above)
    trl, ours = _fake("trl", [0.69]), _fake("ours", [0.69])
    trl["rss_growth_mb"] = 0.0
    groups = compare([trl, ours])
    ratios = groups[0]["ours_over_trl"]
    assert "rss_growth_mb" not in ratios and ratios["peak_rss_mb"]["median"] == 1.0
    assert "n/a (TRL's is ≤ 0)" in format_table(groups, cuda=False)


def test_lockstep_ratio_is_over_paired_steps():
    # after 2 warm-up steps TRL takes 2 s where ours takes 1 s, but a burst of load hits TRL's last step: the
    # paired-step median stays 2 (the ratio of the runs' mean step times would say 8)
    runs = [_fake("trl", [0.69], 0, 1 / 8, [9, 9, 2, 2, 20]), _fake("ours", [0.69], 0, 1.0, [9, 9, 1, 1, 1])]
    ratio = compare(runs)[0]["ours_over_trl"]["tokens_per_s"]
    assert ratio["paired_steps"] and ratio["n"] == 3 and ratio["median"] == 2.0
    assert "2.00× (quartiles 2.00×–11.00×, 3 paired steps)" in format_table(compare(runs), cuda=False)


def test_model_flops_of_llama_3_2_1b_by_hand():
    import torch

    from fairalign.scripts.bench_shapes import build_shape

    model, _ = build_shape("llama3-1b", device="meta")  # shapes only, no memory
    layer = 2 * 2048 * 2048 + 2 * 2048 * 512 + 3 * 2048 * 8192 + 2 * 2048  # q, o; k, v (8 KV heads x 64); MLP; norms
    n = 16 * layer + 2048 + 128256 * 2048  # + final norm + tied LM head
    assert model_flops.matmul_params(model) == n == 1_235_814_400
    assert model_flops.attention_dims(model.config) == (16, 2048) and model.dtype == torch.float32
    attention = 4 * 16 * 2048 * 1024  # forward, s = 1024
    full = model_flops.train_flops_per_token(n, 16, 2048, 1024, "full", reference_each_step=True)
    assert full == 6 * n + 3 * attention + 2 * n + attention == 10_423_386_112
    assert model_flops.train_flops_per_token(n, 16, 2048, 1024, "full", False) == 6 * n + 3 * attention
    assert model_flops.train_flops_per_token(n, 16, 2048, 1024, "lora", False, adapter_params=10) == (
        4 * n + 3 * attention + 60)
    # 40k tokens/s on an H100 SXM: 10.42e9 x 4e4 / 989e12
    assert model_flops.mfu(full, 40_000, 989.0) == pytest.approx(0.42158, abs=1e-5)
    assert model_flops.mfu(full, 40_000, None) is None
    assert model_flops.effective_seq_len([1, 3]) == 2.5  # (1 + 9) / 4: the long sequence's tokens weigh more


def test_peak_table_and_shape_options():
    assert model_flops.peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert model_flops.peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert model_flops.peak_tflops("NVIDIA H200") == 989.0
    assert model_flops.peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert model_flops.peak_tflops("cpu") is None
    parse = lambda *a: resolve_defaults(make_parser().parse_args(list(a)))
    with pytest.raises(ValueError, match="allow_slow_cpu"):
        parse("--shape", "llama3-1b")
    with pytest.raises(ValueError, match="drop --model"):
        parse("--shape", "llama3-tiny", "--model", "tiny")
    with pytest.raises(ValueError, match="need --shape"):
        parse("--model", "tiny", "--prompt_tokens", "8")
    with pytest.raises(ValueError, match="is not one of llama3-1b"):
        parse("--shape", "llama3-2b")
    for bad in ("0", "-5", "nan"):
        with pytest.raises(ValueError, match="--peak_tflops must be a positive"):
            parse("--model", "tiny", "--peak_tflops", bad)
    big = parse("--shape", "llama3-1b", "--device", "cuda")
    assert (big.batch, big.prompt_tokens, big.completion_tokens, big.no_lockstep) == (4, 512, 512, True)


def test_table_shows_mfu_and_memory_ratio():
    runs = [dict(_fake(v, [0.69], tokens_per_s=t), mfu=m, peak_mem_mb=mem)
            for v, t, m, mem in (("trl", 100.0, 0.2, 1000.0), ("ours", 150.0, 0.3, 800.0))]
    for r in runs:
        del r["peak_rss_mb"], r["rss_growth_mb"]
    table = format_table(compare(runs), cuda=True)
    assert "| MFU |" in table and "20.0%" in table and "30.0%" in table
    assert "| **ours / TRL** | – | 1.50× | – | – | 1.00× | 0.80× |" in table
