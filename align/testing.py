"""Tiny random models and a tokenizer built in-process, for tests, examples and CI (no downloads).

`tiny_tokenizer()` trains a byte-level BPE on a few sentences (any text encodes; ~0.2 s) and gives it
pad/eos tokens and a chat template, so conversational datasets work. `tiny_llama()` / `tiny_gpt2()` build
2-layer models from a config with a fixed seed: Llama has no linear biases, GPT-2 has them.
"""
from __future__ import annotations

import functools

import torch

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "She works as a nurse and he works as an engineer at the hospital downtown.",
    "Language models should be helpful, honest and harmless to every group of people.",
    "You are a wonderful person. You are a terrible idiot. Thank you so much for your help!",
    "What is the capital of France? Paris is the capital of France.",
    "The man and the woman are doctors, teachers, lawyers, cooks, pilots and programmers.",
    "0123456789 !?.,;:'\"()[]{}<>-_+=*/\\|@#$%^&~`",
]


@functools.lru_cache(maxsize=1)
def _tokenizer_json() -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    return tok.to_str()


def tiny_tokenizer(padding_side: str = "right"):
    """A fast tokenizer: vocab ~400, eos `<|endoftext|>`, pad `<pad>`, ChatML chat template."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json()),
        eos_token="<|endoftext|>",
        pad_token="<pad>",
        bos_token=None,
        padding_side=padding_side,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tiny_llama(vocab_size: int | None = None, seed: int = 0, hidden_size: int = 32, num_layers: int = 2):
    """2-layer Llama (no biases, RMSNorm), dropout off, float32."""
    from transformers import LlamaConfig, LlamaForCausalLM

    vocab_size = vocab_size or len(tiny_tokenizer())
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        pad_token_id=vocab_size - 1,
        eos_token_id=0,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval()


def save_tiny_llama(path):
    """`tiny_llama()` and `tiny_tokenizer()` saved as a local model folder (for APIs and CLIs that take a path);
    returns `path`."""
    model, tokenizer = tiny_llama(), tiny_tokenizer()
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def tiny_gpt2(vocab_size: int | None = None, seed: int = 0, hidden_size: int = 32, num_layers: int = 2):
    """2-layer GPT-2 (linear biases, LayerNorm with beta), all dropout off, float32."""
    from transformers import GPT2Config, GPT2LMHeadModel

    vocab_size = vocab_size or len(tiny_tokenizer())
    config = GPT2Config(
        vocab_size=vocab_size,
        n_embd=hidden_size,
        n_layer=num_layers,
        n_head=4,
        n_positions=512,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        pad_token_id=vocab_size - 1,
        eos_token_id=0,
        bos_token_id=0,
    )
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config).eval()


TINY_PREFERENCES = [
    {"prompt": "Tell me about nurses.", "chosen": " Nurses are skilled people of every gender.", "rejected": " Nurses are all women."},
    {"prompt": "Describe engineers.", "chosen": " Engineers solve problems.", "rejected": " Engineers are men, obviously."},
    {"prompt": "Reply to: thank you!", "chosen": " You are welcome.", "rejected": " Whatever, idiot."},
    {"prompt": "What is the capital of France?", "chosen": " Paris.", "rejected": " I will not say, you fool."},
    {"prompt": "Say something kind.", "chosen": " You are a wonderful person.", "rejected": " You are a terrible person."},
    {"prompt": "Who can be a pilot?", "chosen": " Anyone who trains for it.", "rejected": " Only men can fly planes."},
    {"prompt": "Who cooks?", "chosen": " People of all groups cook.", "rejected": " Women belong in the kitchen."},
    {"prompt": "Help me, please.", "chosen": " Of course, how can I help?", "rejected": " No. Go away."},
]
