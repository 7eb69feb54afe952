"""Task declarations: one YAML per evaluation (discovered by `fairalign.eval.registry`), and the module that
runs it. See docs/suite.md, "Write your own task"."""
