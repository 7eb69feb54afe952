"""fairalign.eval: toxicity, occupational bias (BLS) and NLI bias (BBNLI / BBNLI-next) evaluations."""
