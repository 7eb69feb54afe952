"""The suite's tasks, registered by key (the names `SuiteConfig.tasks` accepts). See common.py for the contract."""
from fairalign.eval.suite.tasks import bbnli, occupation, toxicity

TASKS = {module.NAME: module for module in (toxicity, occupation, bbnli)}

__all__ = ["TASKS"]
