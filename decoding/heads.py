"""Attribute heads: the classifiers UDDIA's detox term differentiates through.

Contract: any `torch.nn.Module` mapping pooled final hidden states (batch, hidden) to class logits
(batch, num_classes). The pooled state is the mean of the LM's final-layer hidden states (after the final norm,
`outputs.hidden_states[-1]`) over the non-padding tokens:
    pooled = Σ_t m_t h_t / Σ_t m_t
UDDIA follows PPLM's discriminator recipe (Dathathri et al. 2020): a linear head on a *frozen* LM, trained with
cross-entropy on mean-pooled states (paper: Jigsaw toxic comments, Adam lr 1e-4, batch 64, 10 epochs, < 100
tokens). `train_head` does exactly that; `AttributeHead` stores what it was trained on (LM name, hidden size,
class names, an embedding probe) so that using it with another LM is a clear error, not silent garbage.

    head = train_head(model, tokenizer, texts, labels, class_names=["non_toxic", "toxic"])
    save_head(head, "head.pt")               # .pt (torch) or .json (plain numbers)
    head = load_head("head.pt", model=model)  # ValueError if trained for another LM or hidden size
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

PROBE_SIZE = 8  # embedding rows x columns stored as the LM's fingerprint


def model_name(model) -> str:
    config = getattr(model, "config", None)
    return str(getattr(config, "name_or_path", None) or getattr(config, "_name_or_path", None) or type(model).__name__)


def hidden_size(model) -> int:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    return int(config.hidden_size)


def embedding_probe(model) -> list[list[float]]:
    """A small corner of the input embedding matrix: identifies the LM's weights, whatever its name or path."""
    weight = model.get_input_embeddings().weight
    return weight[:PROBE_SIZE, :PROBE_SIZE].detach().float().cpu().tolist()


class AttributeHead(nn.Module):
    """Linear head over mean-pooled final hidden states -> class logits, with the metadata of its LM."""

    def __init__(self, hidden_size: int, class_names: Sequence[str] = ("non_toxic", "toxic"), lm_name: str = "",
                 probe: list[list[float]] | None = None, description: str = ""):
        super().__init__()
        if hidden_size < 1 or len(class_names) < 2:
            raise ValueError(f"AttributeHead needs hidden_size >= 1 and >= 2 classes, got {hidden_size}, {list(class_names)}")
        self.hidden_size = hidden_size
        self.class_names = list(class_names)
        self.lm_name = lm_name
        self.probe = probe
        self.description = description
        self.linear = nn.Linear(hidden_size, len(class_names))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:  # (B, d) -> (B, C)
        return self.linear(pooled.to(self.linear.weight.dtype))

    def metadata(self) -> dict:
        return {"hidden_size": self.hidden_size, "class_names": self.class_names, "lm_name": self.lm_name,
                "probe": self.probe, "description": self.description, "pooling": "mean of final hidden states"}

    def check_model(self, model, strict: bool = True) -> None:
        """ValueError if the head was trained on another LM (hidden size or embedding probe differ)."""
        d = hidden_size(model)
        if d != self.hidden_size:
            raise ValueError(
                f"attribute head was trained on {self.lm_name or 'an LM'} with hidden size {self.hidden_size}, but this "
                f"model ({model_name(model)}) has hidden size {d}; train one for it: fairalign decoding train-head --model ..."
            )
        if strict and self.probe is not None:
            mine = torch.tensor(embedding_probe(model))
            theirs = torch.tensor(self.probe)
            if mine.shape != theirs.shape or not torch.allclose(mine, theirs, rtol=2e-2, atol=2e-3):
                raise ValueError(
                    f"attribute head was trained on {self.lm_name!r}, whose embedding weights differ from this model's "
                    f"({model_name(model)}); a head only works on the LM whose hidden states it was trained on. Train one "
                    "for this model (fairalign decoding train-head), or pass strict=False if the weights were only re-quantised"
                )


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Σ_t m_t h_t / Σ_t m_t: (B, T, d), (B, T) -> (B, d)."""
    m = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1)


@torch.no_grad()
def pooled_features(model, tokenizer, texts: Sequence[str], batch_size: int = 16, max_length: int = 100,
                    progress: bool = False) -> torch.Tensor:
    """Mean-pooled final hidden states of a frozen LM for each text: (N, d) float32 on CPU."""
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    out = []
    for start in tqdm(range(0, len(texts), batch_size), disable=not progress, desc="features"):
        enc = tokenizer(list(texts[start : start + batch_size]), return_tensors="pt", padding=True, truncation=True,
                        max_length=max_length).to(device)
        hidden = model(**enc, output_hidden_states=True).hidden_states[-1]
        out.append(mean_pool(hidden.float(), enc["attention_mask"]).cpu())
    return torch.cat(out) if out else torch.zeros(0, hidden_size(model))


def fit_linear_head(features: torch.Tensor, labels: torch.Tensor, head: AttributeHead, epochs: int = 10, lr: float = 1e-4,
                    batch_size: int = 64, seed: int = 0, class_weights: torch.Tensor | None = None) -> list[float]:
    """Adam on cross-entropy over precomputed features (the LM stays frozen); returns the mean loss per epoch."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss(weight=class_weights)
    history = []
    for _ in range(epochs):
        order = torch.randperm(len(features), generator=gen)
        total = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            loss = loss_fn(head(features[idx]), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        history.append(total / max(len(order), 1))
    return history


def train_head(model, tokenizer, texts: Sequence[str], labels: Sequence[int], class_names: Sequence[str] = ("non_toxic", "toxic"),
               epochs: int = 10, lr: float = 1e-4, batch_size: int = 64, max_length: int = 100, seed: int = 0,
               balance: bool = False, description: str = "", progress: bool = False) -> AttributeHead:
    """Train a linear attribute head on a frozen LM's mean-pooled final hidden states (PPLM/UDDIA recipe)."""
    if len(texts) != len(labels) or not texts:
        raise ValueError(f"train_head: need as many labels as texts (got {len(texts)} texts, {len(labels)} labels)")
    y = torch.tensor([int(v) for v in labels])
    if y.min() < 0 or y.max() >= len(class_names):
        raise ValueError(f"train_head: labels must be class indices in [0, {len(class_names)}), got {sorted(set(y.tolist()))}")
    features = pooled_features(model, tokenizer, texts, max_length=max_length, progress=progress)
    torch.manual_seed(seed)
    head = AttributeHead(hidden_size(model), class_names, lm_name=model_name(model), probe=embedding_probe(model),
                         description=description)
    weights = None
    if balance:
        counts = torch.bincount(y, minlength=len(class_names)).float().clamp_min(1)
        weights = counts.sum() / (len(class_names) * counts)
    fit_linear_head(features, y, head, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, class_weights=weights)
    return head.eval()


def save_head(head: AttributeHead, path: str | Path) -> Path:
    """Save weights + metadata: `.json` (plain numbers, no pickle) or anything else via torch.save."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().cpu() for k, v in head.state_dict().items()}
    if path.suffix == ".json":
        path.write_text(json.dumps({"metadata": head.metadata(), "state_dict": {k: v.tolist() for k, v in state.items()}}))
    else:
        torch.save({"metadata": head.metadata(), "state_dict": state}, path)
    return path


def load_head(path: str | Path, model=None, strict: bool = True) -> AttributeHead:
    """Load a head saved by `save_head`; with `model`, check it was trained for that LM (ValueError if not)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"attribute head file not found: {path} (train one with `fairalign decoding train-head`)")
    blob = json.loads(path.read_text()) if path.suffix == ".json" else torch.load(path, map_location="cpu", weights_only=True)
    meta = blob.get("metadata", {}) if isinstance(blob, dict) else {}
    if "hidden_size" not in meta or "class_names" not in meta or "state_dict" not in blob:
        raise ValueError(f"{path} is not an attribute head saved by fairalign (metadata missing)")
    state = {k: torch.as_tensor(v) for k, v in blob["state_dict"].items()}
    head = AttributeHead(meta["hidden_size"], meta["class_names"], lm_name=meta.get("lm_name", ""),
                         probe=meta.get("probe"), description=meta.get("description", ""))
    head.load_state_dict(state)
    if model is not None:
        head.check_model(model, strict=strict)
    return head.eval()


def random_head(hidden: int, num_classes: int = 2, seed: int = 0, scale: float = 1.0) -> AttributeHead:
    """A random linear head (tests, smoke runs): weights ~ N(0, scale² / hidden)."""
    gen = torch.Generator().manual_seed(seed)
    head = AttributeHead(hidden, [f"class_{i}" for i in range(num_classes)], lm_name="random")
    with torch.no_grad():
        head.linear.weight.copy_(torch.randn(num_classes, hidden, generator=gen) * scale / math.sqrt(hidden))
        head.linear.bias.zero_()
    return head.eval()


def demo_head_path() -> Path:
    """The shipped SmolLM2-135M-Instruct demo head (profanity proxy; see scripts/make_demo_head.py)."""
    return Path(__file__).resolve().parent / "assets" / "smollm2_demo_head.json"
