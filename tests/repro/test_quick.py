"""Every reproduction script runs end to end in --quick mode (tiny random model) and writes its JSON, plot and
tables. It checks the scripts keep working, never the papers' claims (those are the full runs' job)."""
import json

import pytest

from fairalign.scripts.repro.run_all import reproductions


@pytest.mark.parametrize("name", sorted(reproductions()))
def test_quick_run_writes_results_plot_and_tables(name, tmp_path, capsys):
    module = reproductions()[name]
    assert module.main(["--quick", "--seeds", "1", "--out", str(tmp_path)]) == 0  # 1 seed: CI time
    results = json.loads((tmp_path / f"{name}.json").read_text())
    assert results["meta"]["quick"] is True and results["meta"]["seeds"] == 1
    assert (tmp_path / f"{name}.png").stat().st_size > 0
    tables = module.tables(results)
    assert tables and all(body.count("|") > 4 for body in tables.values())
    assert all(f"## {key}" in capsys.readouterr().out for key in list(tables)[:1])
