"""Fixtures for the UDDIA tests: one torch thread (the CI box is small and shared; oversubscribed threads make
tiny-model forwards 10x slower), left-padding tokenizer, tiny random attribute heads."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def left_tokenizer():
    from fairalign.align.testing import tiny_tokenizer

    return tiny_tokenizer(padding_side="left")


@pytest.fixture
def head():
    from fairalign.decoding.heads import random_head

    return random_head(32, num_classes=2, seed=1, scale=4.0)


PROMPTS = ["Hello world, you are", "The man", "She works as a nurse and he", "What is"]


@pytest.fixture
def prompts():
    return list(PROMPTS)
