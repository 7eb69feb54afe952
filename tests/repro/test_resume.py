"""--resume continues a stopped reproduction to the same JSON as an uninterrupted run, and refuses to mix rows of
runs whose settings differ (tiny random model, seconds)."""
import json

import pytest

from fairalign.scripts.repro import harness, rdpo

ARGS = ["--quick", "--seeds", "1", "--eps", "0.2", "--no_estimate"]  # 3 jobs: DPO, cDPO, rDPO at eps 0.2


def _without_meta(path):
    results = json.loads(path.read_text())
    results.pop("meta")
    return results


def test_a_stopped_run_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    assert rdpo.main(ARGS + ["--out", str(whole)]) == 0
    train, calls = rdpo.train_and_evaluate, []

    def stop_after_one(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt  # as if the job were killed during its second run
        calls.append(1)
        return train(*args, **kwargs)

    monkeypatch.setattr(rdpo, "train_and_evaluate", stop_after_one)
    with pytest.raises(KeyboardInterrupt):
        rdpo.main(ARGS + ["--out", str(stopped)])
    partial = json.loads((stopped / "rdpo.partial.json").read_text())
    assert [r["method"] for r in partial["runs"]] == ["DPO"] and partial["meta"]["partial"] is True
    assert not (stopped / "rdpo.json").exists()

    monkeypatch.setattr(rdpo, "train_and_evaluate", train)
    assert rdpo.main(ARGS + ["--out", str(stopped), "--resume"]) == 0
    assert _without_meta(stopped / "rdpo.json") == _without_meta(whole / "rdpo.json")
    meta = json.loads((stopped / "rdpo.json").read_text())["meta"]
    assert meta["resumed"]["from"].endswith("rdpo.partial.json") and meta["wall_s"] >= partial["meta"]["wall_s_so_far"]
    assert not (stopped / "rdpo.partial.json").exists()


def test_resume_refuses_other_settings_and_nothing_to_resume(tmp_path):
    with pytest.raises(SystemExit, match="nothing to continue"):
        rdpo.main(ARGS + ["--out", str(tmp_path), "--resume"])
    assert rdpo.main(ARGS + ["--out", str(tmp_path)]) == 0
    with pytest.raises(SystemExit, match=r"settings differ .*lr: earlier 0.001, now 0.002"):
        rdpo.main(ARGS + ["--out", str(tmp_path), "--resume", "--lr", "0.002"])


def test_a_script_without_resume_refuses_it(tmp_path):
    from fairalign.scripts.repro import reweighting

    if getattr(reweighting, "RESUMABLE", False):
        pytest.skip("reweighting resumes")
    with pytest.raises(SystemExit, match="cannot continue a stopped run"):
        reweighting.main(["--quick", "--out", str(tmp_path), "--resume"])


def test_first_difference_names_the_field():
    assert harness._first_difference({"a": 1, "b": {"c": [1, 2]}}, {"a": 1, "b": {"c": [1, 3]}}) == \
        "b.c[1]: earlier 2, now 3"
