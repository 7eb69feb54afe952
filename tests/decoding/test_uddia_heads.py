"""Attribute heads: mean pooling (golden numbers), training on a frozen LM, save/load round trips, and clear
errors for a head trained on another LM."""
import pytest
import torch

from fairalign.decoding.heads import AttributeHead, load_head, mean_pool, random_head, save_head, train_head


def test_mean_pool_golden():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], [[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]]])
    mask = torch.tensor([[1, 1, 0], [0, 1, 1]])
    torch.testing.assert_close(mean_pool(hidden, mask), torch.tensor([[2.0, 3.0], [8.0, 9.0]]))


def test_train_head_learns_a_keyword_attribute(tiny_llama, left_tokenizer):
    good = ["Thank you so much for your help!", "You are a wonderful person.", "What is the capital of France?",
            "The quick brown fox jumps.", "Paris is the capital of France.", "She works as a nurse."]
    bad = ["You are a terrible idiot.", "terrible idiot idiot", "You idiot, terrible.", "idiot terrible idiot!",
           "A terrible idiot works here.", "terrible terrible idiot"]
    texts, labels = good + bad, [0] * len(good) + [1] * len(bad)
    frozen = {k: v.clone() for k, v in tiny_llama.state_dict().items()}
    head = train_head(tiny_llama, left_tokenizer, texts, labels, epochs=300, lr=3e-2, batch_size=4)
    assert all(torch.equal(v, frozen[k]) for k, v in tiny_llama.state_dict().items())  # LM stays frozen
    from fairalign.decoding.heads import pooled_features

    with torch.no_grad():
        acc = (head(pooled_features(tiny_llama, left_tokenizer, texts)).argmax(-1) == torch.tensor(labels)).float().mean()
    assert acc >= 0.9
    assert head.hidden_size == 32 and head.class_names == ["non_toxic", "toxic"] and head.probe is not None
    with pytest.raises(ValueError, match="labels"):
        train_head(tiny_llama, left_tokenizer, texts, labels[:-1])
    with pytest.raises(ValueError, match="class indices"):
        train_head(tiny_llama, left_tokenizer, texts[:2], [0, 2])


@pytest.mark.parametrize("suffix", [".pt", ".json"])
def test_save_load_round_trip(suffix, tmp_path, tiny_llama):
    head = AttributeHead(32, ["ok", "bad", "worse"], lm_name="tiny", probe=[[0.0]])
    torch.nn.init.normal_(head.linear.weight)
    path = save_head(head, tmp_path / f"head{suffix}")
    loaded = load_head(path)
    x = torch.randn(4, 32)
    torch.testing.assert_close(loaded(x), head(x))
    assert loaded.class_names == ["ok", "bad", "worse"] and loaded.lm_name == "tiny"


def test_head_for_another_lm_is_a_clear_error(tmp_path, tiny_llama, tiny_gpt2):
    from fairalign.align.testing import tiny_llama as make_llama
    from fairalign.decoding.heads import embedding_probe

    head = AttributeHead(32, lm_name="tiny-llama", probe=embedding_probe(tiny_llama))
    path = save_head(head, tmp_path / "h.pt")
    load_head(path, model=tiny_llama)  # its own LM: fine
    with pytest.raises(ValueError, match="embedding weights differ"):
        load_head(path, model=tiny_gpt2)  # same hidden size, other weights
    with pytest.raises(ValueError, match="hidden size 64"):
        load_head(path, model=make_llama(hidden_size=64))
    with pytest.raises(ValueError, match="not found"):
        load_head(tmp_path / "missing.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="metadata"):
        load_head(tmp_path / "other.pt")


def test_random_head_contract():
    head = random_head(16, num_classes=3, seed=2)
    assert head(torch.zeros(5, 16)).shape == (5, 3)
    assert torch.equal(random_head(16, 3, seed=2).linear.weight, head.linear.weight)
