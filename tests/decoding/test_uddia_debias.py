"""Debias term: tables and loss against brute-force formulas, the Hellinger trigger, and the term reaching θ's
gradient (the official code overwrote it with the detox loss)."""
import json
import math

import pytest
import torch

from fairalign.decoding.uddia.debias import DebiasTerm
from fairalign.decoding.uddia.wordlists import BUILTIN_GROUPS, load_groups

GROUPS = {"female": ["she", "woman", "her"], "male": ["he", "man", "his"]}


@pytest.fixture
def term(left_tokenizer):
    torch.manual_seed(0)
    emb = torch.randn(len(left_tokenizer), 16)
    return DebiasTerm(emb, left_tokenizer, GROUPS, temperature=0.1, token_threshold=0.6, trigger=0.1), emb


def _word(emb, tok, w):
    return emb[tok(" " + w, add_special_tokens=False)["input_ids"]].mean(0)


def test_directions_and_token_attributes_brute_force(term, left_tokenizer):
    t, emb = term
    pairs = list(zip(GROUPS["female"], GROUPS["male"]))
    diff = torch.stack([(_word(emb, left_tokenizer, f) - _word(emb, left_tokenizer, m)) / 2 for f, m in pairs]).mean(0)
    u_f = diff / diff.norm()
    torch.testing.assert_close(t.directions[0], u_f)
    torch.testing.assert_close(t.directions[1], -u_f)  # two groups: opposite directions (SPCA's first component)
    for v in [0, 7, 123]:
        c = float(emb[v] @ u_f / emb[v].norm())
        s = torch.tensor([(1 + c) / 2, (1 - c) / 2]) / 0.1
        torch.testing.assert_close(t.p_attr[v], torch.softmax(s, 0))
        kl_u = sum(p * math.log(2 * p) for p in t.p_attr[v].tolist())
        assert abs(float(t.kl_uniform[v]) - kl_u) < 1e-5


def test_context_attributes_and_loss_brute_force(term):
    t, emb = term
    V = emb.shape[0]
    ctx = torch.randn(2, 16)
    n = torch.tensor([3.0, 1.0])
    probs = torch.softmax(torch.randn(2, V), -1)
    p_ctx = t.context_attributes(ctx, n)
    expected_loss = []
    for b in range(2):
        total = 0.0
        for v in range(V):
            xc = (n[b] * ctx[b] + emb[v]) / (n[b] + 1)
            cos = torch.stack([torch.nn.functional.cosine_similarity(xc, t.directions[a], dim=0) for a in range(2)])
            p = torch.softmax((1 + cos) / 2 / 0.1, 0)
            if v < 5:
                torch.testing.assert_close(p_ctx[b, v], p, rtol=1e-4, atol=1e-6)
            kl = float((p * (p / t.p_attr[v]).log()).sum())
            total += float(probs[b, v]) * (kl + 0.5 * float(t.kl_uniform[v]))
        expected_loss.append(total)
    torch.testing.assert_close(t.loss(probs, ctx, n), torch.tensor(expected_loss), rtol=1e-4, atol=1e-6)


def test_hellinger_trigger(term):
    t, emb = term
    q = t.biased  # (V, 2)
    # P = Q_female: H(P, Q_f) = 0, H(P, Q_m) = sqrt(1 - Σ sqrt(Q_f Q_m)) > 0.1 -> lopsided
    h = t.hellinger(q[:, 0][None])
    assert abs(float(h[0, 0])) < 1e-3
    assert abs(float(h[0, 1]) - math.sqrt(1 - float((q[:, 0] * q[:, 1]).sqrt().sum()))) < 1e-5
    assert bool(t.triggered(q[:, 0][None]))
    mix = (q[:, 0] + q[:, 1]) / 2  # equally far from both: no trigger
    assert not bool(t.triggered(mix[None]))


def test_word_lists(tmp_path):
    assert len(BUILTIN_GROUPS["gender"]["female"]) == len(BUILTIN_GROUPS["gender"]["male"]) >= 60
    path = tmp_path / "religion.json"
    path.write_text(json.dumps({"a": ["church", "priest"], "b": ["mosque", "imam"], "c": ["temple", "rabbi"]}))
    assert list(load_groups(str(path))) == ["a", "b", "c"]
    path.write_text(json.dumps({"a": ["x"], "b": ["y", "z"]}))
    with pytest.raises(ValueError, match="aligned"):
        load_groups(str(path))
    with pytest.raises(ValueError, match="debias_groups"):
        load_groups("race")


def _adaptation(model, tokenizer, head, debias_weight, lr=0.06):
    from fairalign.decoding import UDDIAConfig, UDDIAGenerator
    from fairalign.decoding.uddia.step import Adaptation

    cfg = UDDIAConfig(lr=lr, debias_weight=debias_weight or 0.05, debias_token_threshold=0.55, redo_ppl_threshold=None)
    gen = UDDIAGenerator(model, tokenizer, cfg, attribute_head=head)
    enc = tokenizer(["She works as a nurse and he", "The man"], return_tensors="pt", padding=True)
    state = gen._prefill(enc["input_ids"], enc["attention_mask"])
    rows = torch.arange(2)
    with gen._frozen(), gen.adapter.attached(1) as p:
        ad = Adaptation(runner=gen.runner, adapter=gen.adapter, num_params=p, lr=cfg.lr, steps=1, lookahead=1,
                        head=head, debias=gen.debias, debias_weight=debias_weight)
        return ad.run(state, rows, torch.ones(2, dtype=torch.bool), torch.ones(2, dtype=torch.bool))


@pytest.mark.parametrize("model_name", ["tiny_gpt2", "tiny_llama"])
def test_debias_term_reaches_the_gradient(model_name, request, left_tokenizer, head):
    model = request.getfixturevalue(model_name)
    # debias alone moves θ (no detox head at all)
    _, theta_b, loss_b = _adaptation(model, left_tokenizer, None, 0.05)
    assert theta_b.abs().max() > 0.05 and (loss_b > 0).all()
    # detox + debias differs from detox alone: the debias loss is added, not overwritten
    _, theta_d, loss_d = _adaptation(model, left_tokenizer, head, 0.0)
    _, theta_u, loss_u = _adaptation(model, left_tokenizer, head, 0.05)
    assert not torch.equal(theta_d, theta_u)
    torch.testing.assert_close(loss_u, loss_d + loss_b)  # loss_b is already 0.05 · L_b
