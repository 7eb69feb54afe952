"""`fairalign logic` CLI: help, text and JSON reports, decompilation, enumeration, errors."""
import json

import pytest

from fairalign.scripts.cli import main


def test_logic_cli_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["logic", "--help"])
    assert exit_.value.code == 0
    assert "--decompile" in capsys.readouterr().out


def test_logic_cli_named_structure_text(capsys):
    assert main(["logic", "--structure", "orpo"]) == 0
    out = capsys.readouterr().out
    assert "rho  = log(pi_w*(1 - pi_l)) - log((1 - pi_w)*pi_l)" in out
    assert "check side  P & P_C           = Mw & ~Ml" in out
    assert "logp_normalisation=mean" in out  # the collapse warning
    assert "entails          uncpo" in out


def test_logic_cli_formula_json(capsys):
    assert main(["logic", "--core", "(Ml & Rw) -> Mw", "--condition", "(Mw & Rl & ~Ml) | (Ml & Rw & ~Mw)",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["relations"]["novel_ref"] == "equivalent"
    assert report["uses_reference"] and len(report["truth_table"]) == 16
    checked = [r["world"] for r in report["truth_table"] if r["check"]]
    assert checked == [{"Mw": 1, "Ml": 0, "Rw": 0, "Rl": 1}, {"Mw": 1, "Ml": 0, "Rw": 1, "Rl": 1}]


def test_logic_cli_decompile(capsys):
    assert main(["logic", "--decompile", "log(pi_w*ref_l) - log(pi_l*ref_w)", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["relations"]["dpo"] == "equivalent" and report["rho"] == "log(pi_w*ref_l) - log(pi_l*ref_w)"


def test_logic_cli_enumerate(capsys):
    assert main(["logic", "--enumerate", "--family", "~Ml", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["count"] == len(report["entries"]) > 0
    assert any("unlikelihood" in e["names"] for e in report["entries"])
    assert main(["logic", "--list"]) == 0
    assert "novel_ref" in capsys.readouterr().out


@pytest.mark.parametrize("argv, words", [
    (["--core", "Mw &"], "position 4"),
    (["--structure", "dpoo"], "unknown name"),
    (["--decompile", "2*pi_w/pi_l"], "not a ratio"),
    ([], "give --structure"),
])
def test_logic_cli_errors(capsys, argv, words):
    assert main(["logic", *argv]) == 2
    assert words in capsys.readouterr().err
