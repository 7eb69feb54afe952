"""The bias evaluation suite: every registered task (toxicity, occupational bias against BLS, NLI bias on BBNLI,
counterfactual group fairness, and any declared in eval/tasks/) for one or several systems (model, + PEFT adapter, + UDDIA decoding), in one report with differences to a baseline. See docs/suite.md.

Compare a base model, an rDPO-tuned adapter and UDDIA decoding (what `fairalign demo` does):

    from fairalign.eval.suite import SuiteConfig, SystemSpec, run_suite

    config = SuiteConfig(
        systems=[SystemSpec("base", model="smollm2"),
                 SystemSpec("tuned", model="smollm2", adapter="outputs/demo/rdpo-adapter"),
                 SystemSpec("uddia", model="smollm2", uddia="demo",
                            uddia_config={"lr": 0.01, "trigger_threshold": 0.5, "redo_ppl_threshold": None})],
        out="outputs/demo/suite",
    )
    results = run_suite(config)      # writes results.json, report.html, report.md (+ plots/); resumable
    # or the demo's small sizes from YAML, with fields overridden:
    config = load_config("configs/suites/demo_smollm2.yaml", out="outputs/demo/suite")

Each run writes <out>/systems/<system>/<task>.json as it finishes; a rerun with the same `out` reuses them.
`write_reports(results, out_dir)` re-renders the reports; `validate_results(obj)` checks a results.json.
"""
from fairalign.eval.suite.config import SuiteConfig, SystemSpec, load_config, parse_system
from fairalign.eval.suite.report import write_reports
from fairalign.eval.suite.runner import run_suite
from fairalign.eval.suite.schema import SCHEMA_VERSION, SchemaError, validate_results
from fairalign.eval.suite.sources import MissingData, shared_data_dir

__all__ = [
    "SuiteConfig", "SystemSpec", "load_config",
    "parse_system", "run_suite", "write_reports", "validate_results", "SchemaError", "SCHEMA_VERSION",
    "MissingData", "shared_data_dir",
]
