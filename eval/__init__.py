"""fairalign.eval: toxicity, occupational bias (BLS) and NLI bias (BBNLI / BBNLI-next) evaluations."""


def evaluate_module_path(name: str) -> str:
    """Local folder of a fairalign `evaluate` module ("toxicity", "occupation", "bbnli"), for offline use:
    `evaluate.load(evaluate_module_path("toxicity"))`. Unknown name -> ValueError listing the valid ones.
    Imported lazily so `import fairalign.eval` stays light (no evaluate, datasets or torch)."""
    from fairalign.eval.evaluate_modules import module_path

    return module_path(name)
