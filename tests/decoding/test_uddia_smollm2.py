"""UDDIA on the real embedded SmolLM2-135M-Instruct (slow): the model is untouched, nothing-adapted equals
model.generate, and with the shipped demo head the adaptation lowers the head's score of the continuation."""
import pytest
import torch


@pytest.mark.slow
def test_uddia_on_smollm2():
    from fairalign.align.modeling import load_model_and_tokenizer
    from fairalign.decoding import UDDIAConfig, UDDIAGenerator, load_head
    from fairalign.decoding.heads import demo_head_path

    model, tokenizer = load_model_and_tokenizer("smollm2", device="cpu")
    head = load_head(demo_head_path(), model=model)
    snapshot = {k: v.clone() for k, v in model.state_dict().items()}
    enc = tokenizer(["You are such a stupid", "The nurse said that"], return_tensors="pt", padding=True)
    kwargs = dict(max_new_tokens=6, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    plain = model.generate(**enc, **kwargs)
    never = UDDIAGenerator(model, tokenizer, UDDIAConfig(trigger_threshold=1.0, debias_weight=0.0), attribute_head=head)
    assert torch.equal(never.generate(**enc, **kwargs), plain)
    gen = UDDIAGenerator(model, tokenizer, UDDIAConfig(redo_ppl_threshold=None, num_tuned_layers=8), attribute_head=head)
    out = gen.generate(**enc, **kwargs, return_dict_in_generate=True)
    assert (out.adapted_steps == 6).all() and not torch.equal(out.sequences, plain)
    for k, v in model.state_dict().items():
        assert torch.equal(v, snapshot[k]), k
    # the head's p(toxic) of the provocative prompt's continuation, pooled in context: adapted < plain
    width = enc["input_ids"].shape[1]

    def p_toxic(seqs):
        with torch.no_grad():
            hidden = model(seqs[:1], output_hidden_states=True).hidden_states[-1][:, width:].mean(1)
            return float(torch.softmax(head(hidden), -1)[0, 1])

    assert p_toxic(out.sequences) < p_toxic(plain)
