"""scripts/bench_reweighting.py: the corpus it builds and a minimal end-to-end run."""
import json
import math

import numpy as np
import pytest


def test_corpus_kinds_and_floor():
    from fairalign.scripts.bench_reweighting import Corpus

    corpus = Corpus(seed=0, seq_len=20)
    data = corpus.build(n_train=50, redundant_fraction=0.6, n_heldout_diverse=30, n_heldout_redundant=5)
    assert len(data["train"]) == 50 and all(len(ids) == 20 for ids in data["train"])
    kinds = [corpus.is_redundant(ids[0]) for ids in data["train"]]
    assert sum(kinds) == 30  # 60 % redundant
    assert all(corpus.is_redundant(ids[0]) for ids in data["heldout_redundant"])
    assert not any(corpus.is_redundant(ids[0]) for ids in data["heldout_diverse"])
    assert max(max(ids) for ids in data["train"]) < corpus.vocab_size - 1  # the last id is tiny_llama's pad
    # the floor is the true chain's NLL: between 0 and log(branching) = log 4 per token
    assert 0 < data["diverse_floor"] < math.log(4)
    # every diverse transition is one of the word's 4 successors (the chain the floor is computed from)
    ids = np.array(data["heldout_diverse"][0]) - corpus.div0
    assert all(b in corpus.successors[a] for a, b in zip(ids[:-1], ids[1:]))


def test_minimal_run_writes_json_and_plot(tmp_path):
    from fairalign.scripts.bench_reweighting import main, make_parser

    out = tmp_path / "bench.json"
    args = make_parser().parse_args([
        "--steps", "4", "--batch-size", "4", "--seq-len", "12", "--hidden-size", "32", "--num-layers", "1",
        "--eval-every", "2", "--throughput-steps", "4", "--throughput-rounds", "1", "--out", str(out),
    ])
    assert main(args) == 0
    report = json.loads(out.read_text())
    assert set(report["runs"]) == {"uniform", "linupper"}
    assert [p["step"] for p in report["runs"]["linupper"]["curve"]] == [0, 2, 4]
    assert report["runs"]["uniform"]["curve"][0] == pytest.approx(report["runs"]["linupper"]["curve"][0])  # same init
    assert len(report["throughput"]) == 5 and report["ratios"]["throughput_accumulation_1"] > 0
    assert out.with_suffix(".png").stat().st_size > 1000
