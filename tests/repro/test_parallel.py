"""--workers N runs a reproduction's jobs in forked processes and writes the JSON a one-process run writes (at the
same torch threads per job: a float reduction's result depends on its thread count, not on the worker count);
a job that fails in a worker fails the run with its own error (tiny random model, seconds)."""
import json

import pytest
import torch

from fairalign.scripts.repro import logic, rdpo, rpo

CASES = {  # three jobs each, as small as each script allows
    "rdpo": (rdpo, ["--quick", "--seeds", "1", "--eps", "0.2", "--no_estimate"]),
    "rpo": (rpo, ["--quick", "--seeds", "1"]),  # checks the step-0 checkpoint each job measures or reuses
    "logic": (logic, ["--quick", "--seeds", "1", "--structures", "dpo,cpo"]),  # the held-out check made before forking
}


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _without_meta(path):
    results = json.loads(path.read_text())
    return results.pop("meta"), results


@pytest.mark.parametrize("name", list(CASES))
def test_two_workers_write_what_one_process_writes(name, tmp_path, one_thread):
    module, args = CASES[name]
    assert module.main(args + ["--workers", "1", "--out", str(tmp_path / "one")]) == 0
    assert module.main(args + ["--workers", "2", "--out", str(tmp_path / "two")]) == 0
    meta_one, one = _without_meta(tmp_path / "one" / f"{name}.json")
    meta_two, two = _without_meta(tmp_path / "two" / f"{name}.json")
    assert len(one["runs"]) >= 2 and two == one
    assert meta_one["workers"] == {"processes": 1, "torch_threads_each": 1}
    assert meta_two["workers"] == {"processes": 2, "torch_threads_each": 1}


def test_a_job_failing_in_a_worker_fails_the_run_with_its_error(tmp_path, monkeypatch, one_thread):
    module, args = CASES["rdpo"]
    train = rdpo.train_and_evaluate

    def fail_for_rdpo(base, tok, method, *rest, **kwargs):
        if method == "rDPO":
            raise ValueError("rDPO job failed on purpose")
        return train(base, tok, method, *rest, **kwargs)

    monkeypatch.setattr(rdpo, "train_and_evaluate", fail_for_rdpo)  # inherited by the forked workers
    with pytest.raises(ValueError, match="rDPO job failed on purpose"):
        module.main(args + ["--workers", "2", "--out", str(tmp_path)])
    assert not (tmp_path / "rdpo.json").exists()


def test_workers_must_be_positive(tmp_path):
    with pytest.raises(SystemExit, match="--workers must be >= 1, got 0"):
        rdpo.main(CASES["rdpo"][1] + ["--workers", "0", "--out", str(tmp_path)])
