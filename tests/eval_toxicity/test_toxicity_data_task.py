"""Prompt loading (local JSONL/TXT, RTP format, challenging subset, offline Hub error) and the task declaration."""
import inspect
import json

import pytest

from fairalign.eval.toxicity import (TOXICITY_AGGREGATIONS, evaluate_toxicity, generate_continuations, load_prompts,
                                     load_task, normalize_prompts)

RTP_ROWS = [
    {"filename": "a.txt", "begin": 0, "challenging": False, "prompt": {"text": "So I said", "toxicity": 0.1},
     "continuation": {"text": " hi"}},
    {"filename": "b.txt", "begin": 5, "challenging": True, "prompt": {"text": "You are such a", "toxicity": 0.6},
     "continuation": {"text": " ..."}},
    {"filename": "c.txt", "begin": 9, "challenging": True, "prompt": {"text": "They all", "toxicity": None},
     "continuation": {"text": " ..."}},
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_rtp_format_and_challenging(tmp_path):
    path = write_jsonl(tmp_path / "rtp.jsonl", RTP_ROWS)
    prompts = load_prompts(path)
    assert [p["prompt"] for p in prompts] == ["So I said", "You are such a", "They all"]
    assert prompts[1] == {"prompt_id": "1", "prompt": "You are such a", "challenging": True, "prompt_toxicity": 0.6,
                          "filename": "b.txt", "begin": 5}
    hard = load_prompts(path, challenging_only=True)
    assert [p["prompt_id"] for p in hard] == ["1", "2"]  # ids are positions in the unfiltered file
    assert [p["prompt_id"] for p in load_prompts(path, limit=2, shuffle_seed=0)] in (["0", "1"], ["0", "2"], ["1", "2"])


def test_plain_jsonl_txt_and_errors(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"id": "x7", "text": "Hello"}, {"prompt_id": 3, "prompt": "World"}])
    assert [(p["prompt_id"], p["prompt"]) for p in load_prompts(path)] == [("x7", "Hello"), ("3", "World")]
    txt = tmp_path / "p.txt"
    txt.write_text("first prompt\n\nsecond prompt\n")
    assert [p["prompt"] for p in load_prompts(txt)] == ["first prompt", "second prompt"]
    with pytest.raises(ValueError, match="challenging"):
        load_prompts(txt, challenging_only=True)
    with pytest.raises(ValueError, match="prompt_field"):
        load_prompts(write_jsonl(tmp_path / "bad.jsonl", [{"question": "?"}]))
    with pytest.raises(ValueError, match="duplicate prompt_id"):
        normalize_prompts([{"id": 1, "prompt": "a"}, {"id": 1, "prompt": "b"}])
    with pytest.raises(FileNotFoundError):
        load_prompts(tmp_path / "missing.jsonl")
    (tmp_path / "broken.jsonl").write_text('{"prompt": "ok"}\n{not json\n')
    with pytest.raises(ValueError, match="broken.jsonl:2"):
        load_prompts(tmp_path / "broken.jsonl")


def test_hub_offline_error_is_clear(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(OSError) as err:
        load_prompts("allenai/real-toxicity-prompts-not-cached-here")
    assert "--prompts" in str(err.value) and "HF_HUB_OFFLINE" in str(err.value)


def test_task_declares_the_protocol_the_code_uses():
    task = load_task()
    d = task.defaults()
    defaults = {k: v.default for k, v in inspect.signature(generate_continuations).parameters.items()}
    assert (defaults["num_samples"], defaults["max_new_tokens"], defaults["top_p"], defaults["temperature"],
            defaults["do_sample"]) == (d["num_samples"], d["max_new_tokens"], d["top_p"], d["temperature"], d["do_sample"])
    assert inspect.signature(evaluate_toxicity).parameters["threshold"].default == d["threshold"]
    assert task.output_type == ["generate"] and task.version >= 1 and len(task.data["revision"]) == 40
    declared = {m.metric for m in task.metrics}
    assert set(TOXICITY_AGGREGATIONS) <= declared
    for name in ("expected_max_toxicity", "toxicity_probability", "per_continuation_toxic_rate"):
        assert task.metric(name).higher_is_better is False and task.metric(name).ideal == 0.0
    assert task.metric("dist_2").higher_is_better is True


def test_variant_include_and_validation(tmp_path):
    from fairalign.align.errors import InputError
    from fairalign.eval.registry import TASK_DIR, load_task_file

    hard = load_task("challenging")
    d = hard.defaults()
    assert hard.variant_of == "toxicity" and d["challenging_only"] and d["group_by"] == [] and d["num_samples"] == 25
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"include: {TASK_DIR / 'toxicity.yaml'}\ntask: bad\ngeneration_kwargs:\n  top_k: 5\n")
    with pytest.raises(InputError, match=r"generation_kwargs.*bad.yaml|bad.yaml.*generation_kwargs"):
        load_task_file(bad)
    bad.write_text(f"include: {TASK_DIR / 'toxicity.yaml'}\ntask: bad\nsettings:\n  threshold: {{type: float, default: 0, range: '(0, 1]', help: x}}\n")
    with pytest.raises(InputError, match="threshold"):
        load_task_file(bad)
    with pytest.raises(InputError, match="registered tasks"):
        load_task("nonexistent")
