"""Loading: evaluate_module_path, offline loading in a fresh process (no Hub, no network, fresh caches),
the module infos, and what a plain wheel needs to ship."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fairalign.eval import evaluate_module_path
from fairalign.eval.evaluate_modules import MODULES

OFFLINE_SCRIPT = """
import json, sys
import evaluate
from fairalign.eval import evaluate_module_path
out = {}
tox = evaluate.load(evaluate_module_path("toxicity"))
out["toxicity"] = tox.compute(prompt_id=["a", "a", "b"], toxicity=[0.9, 0.1, None], num_resamples=50)
occ = evaluate.load(evaluate_module_path("occupation"), config_name="gender")
occ.add_batch(occupation=["Registered nurses", "Cashiers"], model_woman=[80.0, 60.0], model_man=[20.0, 40.0])
out["occupation"] = occ.compute(bls_table=sys.argv[1], num_resamples=50)
nli = evaluate.load(evaluate_module_path("bbnli"))
out["bbnli"] = nli.compute(predictions=json.loads(sys.argv[2]), references=json.loads(sys.argv[3]), num_resamples=50)
print("RESULT " + json.dumps(out))
"""


@pytest.mark.parametrize("offline", [{"HF_HUB_OFFLINE": "1"}, {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}],
                         ids=["hub-offline", "hub-and-datasets-offline"])
def test_loads_offline_in_a_fresh_process(tmp_path, toy_bls_csv, load_module, offline):
    from evaluate_module_helpers import synthetic_bbnli

    rows = [ex.to_dict() for ex in synthetic_bbnli(num_premises=2)]
    labels = [i % 3 for i in range(len(rows))]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HTTP", "HTTPS"))}
    # Fresh caches (the module copy evaluate makes, its arrow files) and a dead proxy: any download fails fast.
    env |= offline | {"HF_HOME": str(tmp_path / "hf"), "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    proc = subprocess.run([sys.executable, "-c", OFFLINE_SCRIPT, str(toy_bls_csv), json.dumps(labels), json.dumps(rows)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.split("RESULT ", 1)[1])
    # same as in this process (in memory), so the cache-file path changes nothing
    assert got["toxicity"] == load_module("toxicity").compute(prompt_id=["a", "a", "b"], toxicity=[0.9, 0.1, None], num_resamples=50)
    assert got["occupation"] == load_module("occupation").compute(
        occupation=["Registered nurses", "Cashiers"], model_woman=[80.0, 60.0], model_man=[20.0, 40.0],
        bls_table=str(toy_bls_csv), num_resamples=50)
    assert got["bbnli"] == load_module("bbnli").compute(predictions=labels, references=rows, num_resamples=50)
    assert (tmp_path / "hf" / "modules" / "evaluate_modules" / "metrics" / "fairalign_toxicity").is_dir()


def test_module_path_names_and_errors():
    for short, folder in MODULES.items():
        path = Path(evaluate_module_path(short))
        assert path.name == folder and (path / f"{folder}.py").is_file()
        assert evaluate_module_path(folder) == str(path) == evaluate_module_path(short.upper())
    with pytest.raises(ValueError, match=r"unknown fairalign evaluate module 'rouge'; valid names: \['bbnli', 'occupation', 'toxicity'\]"):
        evaluate_module_path("rouge")


def test_importing_fairalign_eval_stays_light():
    code = ("import sys, fairalign.eval as e; e.evaluate_module_path('toxicity'); "
            "print(sorted(m for m in ('evaluate', 'datasets', 'torch', 'numpy', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout
    assert out.strip() == "[]"


def test_each_folder_ships_in_a_plain_wheel():
    # setup.py ships packages (folders with __init__.py) and, in them, *.md through package_data.
    for folder in MODULES.values():
        path = Path(evaluate_module_path(folder))
        assert (path / "__init__.py").is_file() and (path / "README.md").is_file()
        script = (path / f"{folder}.py").read_text()
        # evaluate parses imports line by line: "import a, b" reads as a package "a,", relative imports break
        assert not [line for line in script.splitlines() if line.startswith("import ") and "," in line]
        assert not [line for line in script.splitlines() if line.startswith("from .")]


def _documented(key: str, doc: str, categories: list[str]) -> bool:
    base = key.removesuffix("_ci_low").removesuffix("_ci_high")
    forms = {base} | {base.replace(f"{c}_", "<category>_", 1) for c in categories if base.startswith(f"{c}_")}
    return any(f"    {f}" in doc or f", {f}" in doc or f" {f} (" in doc for f in forms)


@pytest.mark.parametrize("name, config, kwargs", [
    ("toxicity", None, lambda p: {"prompt_id": ["a", "b"], "toxicity": [0.9, 0.1]}),
    ("occupation", "race", lambda p: {"occupation": ["Cashiers", "nurse"], "model_white": [50.0, 70.0],
                                      "model_black": [30.0, 20.0], "model_asian": [20.0, 10.0], "bls_table": p}),
    ("bbnli", None, None),
])
def test_info_documents_every_output(load_module, toy_bls_csv, name, config, kwargs):
    from evaluate_module_helpers import synthetic_bbnli

    module = load_module(name, config_name=config)
    info = module.info
    assert info.description.strip() and "@" in info.citation and info.reference_urls and info.features
    assert info.module_name == f"fairalign_{name}" and info.module_type in ("metric", "measurement")
    if kwargs is None:
        rows = synthetic_bbnli(num_premises=2, with_variants=True)
        out = module.compute(predictions=[1] * len(rows), references=rows, num_resamples=20, group_by=["domain"])
    else:
        out = module.compute(**kwargs(toy_bls_csv), num_resamples=20)
    undocumented = [k for k in out if not _documented(k, info.inputs_description, ["white", "black", "asian"])]
    assert not undocumented, f"outputs missing from {name}'s inputs_description: {undocumented}"
    assert "ideal" in info.inputs_description
