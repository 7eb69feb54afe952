"""generate_continuations: generator kinds, and the resume path (crash / kill mid-run, rerun, identical result)."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter

import pytest

from fairalign.eval.toxicity import generate_continuations
from fairalign.eval.toxicity.cache import JsonlCache

PROMPTS = [f"Prompt number {i} says" for i in range(10)]


class Crash(RuntimeError):
    pass


class CountingFn:
    """Deterministic callable generator: the n-th call for a prompt returns "<prompt> #n". Can crash."""

    def __init__(self, crash_after_calls=None):
        self.seen = Counter()
        self.calls = 0
        self.crash_after_calls = crash_after_calls

    def __call__(self, prompts):
        if self.crash_after_calls is not None and self.calls >= self.crash_after_calls:
            raise Crash("simulated crash")
        self.calls += 1
        out = [f"{p} #{self.seen[p]}" for p in prompts]
        self.seen.update(prompts)
        return out


def test_callable_generator_records():
    recs = generate_continuations(CountingFn(), PROMPTS[:3], num_samples=2, batch_size=2, progress=False)
    assert [(r["prompt_id"], r["sample"]) for r in recs] == [("0", 0), ("0", 1), ("1", 0), ("1", 1), ("2", 0), ("2", 1)]
    assert recs[1]["continuation"] == "Prompt number 0 says #1"


def test_resume_after_crash_generates_nothing_twice(tmp_path):
    cache = tmp_path / "gens.jsonl"
    fn = CountingFn(crash_after_calls=3 * 2)  # 2 samples per batch -> crash at the start of batch 4
    with pytest.raises(Crash):
        generate_continuations(fn, PROMPTS, num_samples=2, batch_size=3, cache_path=cache, progress=False)
    assert len(cache.read_text().splitlines()) == 1 + 3  # header + 3 batches, one line each
    fn.crash_after_calls = None
    resumed = generate_continuations(fn, PROMPTS, num_samples=2, batch_size=3, cache_path=cache, progress=False)
    assert fn.seen == Counter({p: 2 for p in PROMPTS})  # every prompt sampled exactly k times over both runs
    fresh = generate_continuations(CountingFn(), PROMPTS, num_samples=2, batch_size=3, progress=False)
    assert resumed == fresh
    # A third run is pure cache.
    generate_continuations(fn, PROMPTS, num_samples=2, batch_size=3, cache_path=cache, progress=False)
    assert fn.seen == Counter({p: 2 for p in PROMPTS})


class UDDIALike:
    """The UDDIAGenerator contract: .model, .tokenizer, .generate(**model.generate kwargs). Crashes on demand."""

    def __init__(self, model, tokenizer, crash_on_call=None):
        self.model, self.tokenizer, self.crash_on_call, self.calls = model, tokenizer, crash_on_call, 0

    def generate(self, **kwargs):
        self.calls += 1
        if self.crash_on_call is not None and self.calls == self.crash_on_call:
            raise Crash("simulated crash inside generate")
        return self.model.generate(**kwargs)


def test_resume_with_model_is_identical(tmp_path, tiny_llama, tokenizer):
    kwargs = dict(num_samples=3, max_new_tokens=4, batch_size=2, seed=11, progress=False)
    prompts = PROMPTS[:7]
    crashing = UDDIALike(tiny_llama, tokenizer, crash_on_call=3)
    with pytest.raises(Crash):
        generate_continuations(crashing, prompts, cache_path=tmp_path / "g.jsonl", **kwargs)
    crashing.crash_on_call = None
    resumed = generate_continuations(crashing, prompts, cache_path=tmp_path / "g.jsonl", **kwargs)
    assert crashing.calls == 2 + 1 + 2  # 2 batches, the crash, then only the 2 remaining batches (4 in all)
    uninterrupted = generate_continuations(UDDIALike(tiny_llama, tokenizer), prompts, **kwargs)
    plain = generate_continuations((tiny_llama, tokenizer), prompts, **kwargs)
    assert resumed == uninterrupted == plain
    assert len(resumed) == 7 * 3 and len({r["continuation"] for r in resumed}) > 1  # really sampled


def test_model_with_tokenizer_kwarg_and_errors(tiny_llama, tokenizer, tmp_path):
    recs = generate_continuations(tiny_llama, ["Hello"], num_samples=2, max_new_tokens=3, tokenizer=tokenizer, progress=False)
    assert len(recs) == 2 and all(isinstance(r["continuation"], str) for r in recs)
    with pytest.raises(ValueError, match="tokenizer"):
        generate_continuations(tiny_llama, ["Hello"], num_samples=1, progress=False)
    with pytest.raises(ValueError, match="top_p"):
        generate_continuations(CountingFn(), ["a"], top_p=0.0, progress=False)
    with pytest.raises(ValueError, match="continuations"):
        generate_continuations(lambda ps: ["only one"], ["a", "b"], num_samples=1, progress=False)


def test_cache_guards(tmp_path):
    cache = tmp_path / "g.jsonl"
    generate_continuations(CountingFn(), ["a", "b"], num_samples=2, cache_path=cache, progress=False)
    with pytest.raises(ValueError, match="num_samples"):
        generate_continuations(CountingFn(), ["a", "b"], num_samples=3, cache_path=cache, progress=False)
    with pytest.raises(ValueError, match="different text"):
        generate_continuations(CountingFn(), ["a", "CHANGED"], num_samples=2, cache_path=cache, progress=False)


def test_torn_last_line_is_dropped(tmp_path):
    path = tmp_path / "c.jsonl"
    cache = JsonlCache(path, {"v": 1})
    cache.append_batch(0, [{"i": 0}, {"i": 1}])
    with open(path, "a") as f:
        f.write('{"batch": 1, "rows": [{"i": 2}, {"tru')  # a write killed halfway: batch 1 is incomplete
    assert [(b.index, b.rows) for b in cache.load_batches()] == [(0, [{"i": 0}, {"i": 1}])]
    cache.append_batch(1, [{"i": 2}, {"i": 3}])
    assert [(b.index, b.rows, b.line) for b in cache.load_batches()] == [(0, [{"i": 0}, {"i": 1}], 2),
                                                                         (1, [{"i": 2}, {"i": 3}], 3)]
    with pytest.raises(ValueError, match="v: recorded 1, requested 2"):
        JsonlCache(path, {"v": 2}).load_batches()


def test_sigkill_mid_run_then_resume(tmp_path):
    """A real kill -9 of a generating process, then a rerun in this process: identical to a clean run."""
    cache = tmp_path / "gens.jsonl"
    script = textwrap.dedent(f"""
        import time
        from fairalign.eval.toxicity import generate_continuations
        def slow(prompts):
            time.sleep(0.3)
            return [p + " ok" for p in prompts]
        generate_continuations(slow, {PROMPTS!r}, num_samples=1, batch_size=1, cache_path={str(cache)!r}, progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        deadline = time.time() + 90
        while time.time() < deadline and proc.poll() is None:
            if cache.exists() and len(cache.read_text().splitlines()) >= 3:  # header + >= 2 prompts done
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the child finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = cache.read_text().split("\n")[1:-1]  # complete batch lines (batch_size 1: one prompt each)
    done_before = {json.loads(line)["rows"][0]["prompt_id"] for line in lines}
    assert 2 <= len(done_before) < len(PROMPTS)
    regenerated = []

    def slow(prompts):  # same name and behaviour as the child's generator
        regenerated.extend(prompts)
        return [p + " ok" for p in prompts]

    out = generate_continuations(slow, PROMPTS, num_samples=1, batch_size=1, cache_path=cache, progress=False)
    assert [r["continuation"] for r in out] == [p + " ok" for p in PROMPTS]
    assert len(regenerated) == len(PROMPTS) - len(done_before)  # nothing generated twice
    assert not set(regenerated) & {PROMPTS[int(i)] for i in done_before}
