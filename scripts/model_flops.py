"""Model FLOPs per trained token and model FLOP utilisation (MFU) for the trainer benchmarks.

Convention (PaLM, Chowdhery et al. 2022, appendix B): a forward pass costs 2·N FLOPs per token for the weight
matmuls plus 4·L·d·s for attention (QKᵀ and the weighted sum of V: two matmuls of s·d per layer and token, 2
FLOPs per multiply-add; no discount for the causal mask), with N the parameters that take part in matmuls (all
but the input embedding; the LM head counted once even when tied to it), L layers, d = heads × head_dim (the
query width) and s the sequence length. A backward pass costs twice its forward. Per logical token (the tokens
of prompt+chosen and prompt+rejected, the same count for TRL and for us):

    full fine-tune:  6·N + 12·L·d·s                   (forward, input gradients, weight gradients)
    LoRA:            4·N + 12·L·d·s + 6·A             (frozen weights: no weight gradients; A = adapter parameters)
    + reference:     2·N +  4·L·d·s                   (when a frozen reference forward runs every step)

s is the token-weighted mean sequence length Σs²/Σs (= s when all sequences are equal). MFU = model FLOPs per
token × tokens/s / the GPU's peak dense bf16 FLOP/s. These are the FLOPs of the logical work, not of what a
trainer executes: encoding the prompt once per pair or skipping the LM head on prompt tokens does less
arithmetic for the same tokens, so with this count MFU ratios equal tokens/s ratios.
"""
from __future__ import annotations

MFU_FORMULA = ("per token: full 6N + 12·L·d·s, LoRA 4N + 12·L·d·s + 6A, plus 2N + 4·L·d·s when the reference "
               "runs each step (PaLM appendix B; N = matmul parameters incl. LM head, d = heads·head_dim, "
               "s = Σs²/Σs); MFU = that × loop tokens/s / peak dense bf16 FLOP/s")

# Peak dense (no sparsity) bf16 tensor-core TFLOP/s from NVIDIA's data sheets (half the "with sparsity" figure).
# Matched in order against torch.cuda.get_device_name(): the more specific names first.
PEAK_BF16_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H200 NVL", 835.0),
    ("H100", 989.0),  # SXM, e.g. "NVIDIA H100 80GB HBM3"
    ("H200", 989.0),
    ("A100", 312.0),
)


def peak_tflops(device_name: str) -> float | None:
    """The table's peak for a device name, or None when the card is not in it."""
    for key, tflops in PEAK_BF16_TFLOPS:
        if key.lower() in device_name.lower():
            return tflops
    return None


def matmul_params(model) -> int:
    """N: every parameter except the input embedding, with the LM head counted once (also when tied to it)."""
    total = sum(p.numel() for p in model.parameters())  # a tied weight is listed once
    embedding = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    return total - embedding.numel() + (head.numel() if head is embedding else 0)


def attention_dims(config) -> tuple[int, int]:
    """(L, d): layers and query width heads × head_dim of a decoder config."""
    config = config.get_text_config()
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return config.num_hidden_layers, heads * head_dim


def effective_seq_len(lengths: list[int]) -> float:
    """Σs²/Σs: attention per token grows with its sequence's length, so long sequences weigh more."""
    return sum(s * s for s in lengths) / sum(lengths)


def train_flops_per_token(n_params: int, n_layers: int, width: int, seq_len: float, mode: str,
                          reference_each_step: bool, adapter_params: int = 0) -> float:
    """Model FLOPs per logical token of one training step (see the module docstring)."""
    attention_forward = 4 * n_layers * width * seq_len
    if mode == "full":
        policy = 6 * n_params + 3 * attention_forward
    elif mode == "lora":
        policy = 4 * n_params + 3 * attention_forward + 6 * adapter_params
    else:
        raise ValueError(f"mode {mode!r} is not full or lora")
    return policy + ((2 * n_params + attention_forward) if reference_each_step else 0)


def mfu(flops_per_token: float, tokens_per_s: float, peak: float | None) -> float | None:
    """Achieved / peak FLOP/s (peak in TFLOP/s); None without a peak."""
    return None if not peak else flops_per_token * tokens_per_s / (peak * 1e12)
