"""fairalign's evaluations as Hugging Face `evaluate` modules, loadable offline from the installed package.

    import evaluate
    from fairalign.eval import evaluate_module_path
    toxicity = evaluate.load(evaluate_module_path("toxicity"))

Each module is a folder holding a script of the same name (what `evaluate.load(<folder>)` looks for) and a
README.md model card. The scripts are thin: every number comes from the function the fairalign suite reports
with. Kept free of heavy imports: `fairalign.eval.evaluate_module_path` imports this file.
"""
from __future__ import annotations

from pathlib import Path

# short name -> folder; the folder name is also the script's stem and the name evaluate reports.
MODULES = {
    "toxicity": "fairalign_toxicity",
    "occupation": "fairalign_occupation",
    "bbnli": "fairalign_bbnli",
}


def module_path(name: str) -> str:
    """Local folder of module `name` ("toxicity", "occupation", "bbnli", or the folder name itself)."""
    key = str(name).strip().lower()
    folder = MODULES.get(key) or (key if key in MODULES.values() else None)
    if folder is None:
        raise ValueError(f"unknown fairalign evaluate module {name!r}; valid names: {sorted(MODULES)} "
                         f"(or {sorted(MODULES.values())})")
    path = Path(__file__).resolve().parent / folder
    if not (path / f"{folder}.py").is_file():
        # Only a broken install gets here (e.g. a wheel built without the module folders).
        raise FileNotFoundError(f"{path / (folder + '.py')} is missing; reinstall fairalign (pip install -e .)")
    return str(path)
