"""Benchmark model shapes built in-process with random weights (speed and memory do not depend on the weights), and
prompt/completion rows of an exact token length for them. No Hub access, no weight files.

`llama3-1b` is Llama-3.2-1B's architecture: the values of its config.json (meta-llama/Llama-3.2-1B on the
Hugging Face Hub, transformers 4.45 format), 1.24B parameters with the tied embedding. `llama3-tiny` is the same
architecture shrunk to run in seconds on a CPU, for tests. The tokenizer is the in-process test tokenizer
(align/testing.py): its ids are < 400 and so valid for any vocabulary here; the LM head still scores the shape's
whole vocabulary.
"""
from __future__ import annotations

LLAMA_3_2_1B = {
    "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
    "num_key_value_heads": 8, "head_dim": 64, "vocab_size": 128256, "tie_word_embeddings": True,
    "hidden_act": "silu", "rms_norm_eps": 1e-5, "attention_bias": False, "mlp_bias": False,
    "max_position_embeddings": 131072, "rope_theta": 500000.0, "initializer_range": 0.02,
    "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192},
}
SHAPES = {
    "llama3-1b": {"config": LLAMA_3_2_1B, "large": True, "batch": 4, "prompt_tokens": 512, "completion_tokens": 512},
    "llama3-tiny": {"config": dict(LLAMA_3_2_1B, hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, head_dim=16, vocab_size=512),
                    "large": False, "batch": 2, "prompt_tokens": 16, "completion_tokens": 8},
}


def get_shape(name: str) -> dict:
    """The SHAPES entry; an unknown name is an error listing the known ones."""
    if name not in SHAPES:
        raise ValueError(f"--shape: {name!r} is not one of {', '.join(SHAPES)}")
    return SHAPES[name]


def shape_config(name: str, tokenizer):
    """The shape's LlamaConfig; the special token ids are the tokenizer's (Llama 3's ids would be out of its range)."""
    from transformers import LlamaConfig

    return LlamaConfig(**get_shape(name)["config"], pad_token_id=tokenizer.pad_token_id,
                       eos_token_id=tokenizer.eos_token_id, bos_token_id=None)


def build_shape(name: str, device: str = "cpu", seed: int = 0):
    """(model, tokenizer): random float32 weights made directly on `device` (a 1B model made on the CPU first
    would cost a minute of initialisation there); the same seed gives both benchmark sides the same weights."""
    import torch
    from transformers import AutoModelForCausalLM

    from fairalign.align.testing import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(shape_config(name, tokenizer), dtype=torch.float32)
    return model, tokenizer


def single_token_words(tokenizer) -> list[str]:
    """Words that the tokenizer encodes as one token each when preceded by a space, sorted."""
    words = []
    for token_id in range(len(tokenizer)):
        text = tokenizer.decode([token_id])
        if (len(text) > 1 and text[0] == " " and text[1:].isalpha()
                and tokenizer(text, add_special_tokens=False)["input_ids"] == [token_id]):
            words.append(text[1:])
    return sorted(words)


def make_token_rows(tokenizer, n: int, prompt_tokens: int, completion_tokens: int, seed: int = 0) -> list[dict]:
    """Rows whose prompt is `prompt_tokens` tokens (words and a '?') and whose completions are `completion_tokens`
    tokens once the trainer appends EOS (words and a '.' or '!'), checked on the first row."""
    import random

    if prompt_tokens < 2 or completion_tokens < 2:
        raise ValueError("--prompt_tokens and --completion_tokens must be at least 2 (a word and a mark)")
    words, rng = single_token_words(tokenizer), random.Random(seed)
    text = lambda k: "".join(" " + rng.choice(words) for _ in range(k))
    rows = [{"prompt": text(prompt_tokens - 1) + "?", "chosen": text(completion_tokens - 2) + ".",
             "rejected": text(completion_tokens - 2) + "!"} for _ in range(n)]
    encode = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]
    got = (len(encode(rows[0]["prompt"])), len(encode(rows[0]["chosen"])) + 1, len(encode(rows[0]["rejected"])) + 1)
    if got != (prompt_tokens, completion_tokens, completion_tokens):
        raise RuntimeError(f"rows of {got} tokens (prompt, chosen, rejected), not "
                           f"({prompt_tokens}, {completion_tokens}, {completion_tokens}): the word list is not one "
                           "token per word for this tokenizer")
    return rows
