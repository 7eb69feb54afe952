"""Shared fixtures: tiny random models and a tokenizer built in-process (no downloads, seconds)."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")

from pathlib import Path

import pytest

SHARED_DATA = Path(os.environ.get("FAIRALIGN_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout (or $FAIRALIGN_SHARED_DATA); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared reference data not found at {SHARED_DATA} (set FAIRALIGN_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def tokenizer():
    from fairalign.align.testing import tiny_tokenizer

    return tiny_tokenizer()


@pytest.fixture
def tiny_llama():
    from fairalign.align.testing import tiny_llama

    return tiny_llama()


@pytest.fixture
def tiny_gpt2():
    from fairalign.align.testing import tiny_gpt2

    return tiny_gpt2()


@pytest.fixture
def tiny_llama_dir(tmp_path):
    """The tiny Llama and its tokenizer saved to a folder, for CLIs that take a model path."""
    from fairalign.align.testing import save_tiny_llama

    return save_tiny_llama(tmp_path / "tiny-llama")


@pytest.fixture
def write_bls_csv(tmp_path):
    """Writes rows (occupation, total (thousands), % women, White, Black, Asian, Hispanic, level) as a clean BLS
    CSV for 2022; returns its path."""
    from toy_files import write_bls_csv

    return lambda rows: write_bls_csv(tmp_path / "toy_bls.csv", rows)


@pytest.fixture
def preference_rows():
    from fairalign.align.testing import TINY_PREFERENCES

    return [dict(r) for r in TINY_PREFERENCES]
