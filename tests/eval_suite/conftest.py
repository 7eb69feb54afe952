"""Fixtures for the suite tests: a tiny model, LoRA adapter and UDDIA head saved once per session, and one
three-system run (base, tuned adapter, UDDIA) over tiny data that several tests read."""
import pytest

from fairalign.align.testing import save_tiny_llama
from suite_helpers import CountingScorer, one_thread, save_lora_adapter, save_random_head, suite_dict


@pytest.fixture(scope="session")
def tiny_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("suite_models")
    model = str(save_tiny_llama(root / "model"))
    return {"root": root, "model": model, "adapter": save_lora_adapter(model, root / "adapter"),
            "head": save_random_head(root / "head.json")}


@pytest.fixture(scope="session")
def compare_run(tiny_files, tmp_path_factory):
    """(results, config dict, scorer) of a 3-system run of every task; the BBNLI judge is the system itself."""
    from fairalign.eval.suite import run_suite

    tmp = tmp_path_factory.mktemp("suite_compare")
    model = tiny_files["model"]
    systems = [{"name": "base", "model": model},
               {"name": "tuned", "model": model, "adapter": tiny_files["adapter"]},
               {"name": "uddia", "model": model, "uddia": tiny_files["head"],
                "uddia_config": {"lr": 0.01, "redo_ppl_threshold": None, "debias_weight": 0.0}}]
    config = suite_dict(tmp, model, systems)
    scorer = CountingScorer()
    with one_thread():
        results = run_suite(config, scorer=scorer, progress=False)
    return results, config, scorer
