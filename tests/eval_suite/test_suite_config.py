"""Suite configuration: the shipped YAMLs load; bad keys and types are errors that say what to write instead."""
from pathlib import Path

import pytest
import yaml

from fairalign.eval.suite import SuiteConfig, SystemSpec, load_config, parse_system
from fairalign.scripts.eval_run import build_config, make_parser

SUITES = Path(__file__).resolve().parents[2] / "configs" / "suites"


def test_shipped_suites_load():
    default = load_config(SUITES / "default.yaml")
    assert [s.name for s in default.systems] == ["base"] and default.tasks == ["toxicity", "counterfactual", "occupation", "bbnli"]
    demo = load_config(SUITES / "demo_smollm2.yaml")
    assert [s.name for s in demo.systems] == ["base", "tuned", "uddia"] and demo.baseline.name == "base"
    config = demo.systems[2].uddia_config_object()
    assert (config.lr, config.trigger_threshold, config.redo_ppl_threshold) == (0.01, 0.5, None)
    assert demo.settings["toxicity"]["prompts"] == "demo" and demo.settings["bbnli"]["max_rows"] == 24
    assert demo.settings["bbnli"]["data"] == "demo" and demo.tasks == default.tasks  # every task runs offline


def _write(tmp_path, data):
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


BASE = {"systems": [{"name": "base", "model": "smollm2"}]}


@pytest.mark.parametrize("data, fragments", [
    ({**BASE, "taks": ["toxicity"]}, ["unknown key(s) ['taks']", "valid keys:", "'tasks'"]),
    ({**BASE, "toxicity": {"limt": 3}}, ["suite.yaml: toxicity: unknown setting(s) ['limt']", "'limit'", "eval/tasks/toxicity.yaml"]),
    ({"systems": [{"name": "base", "model": "smollm2", "adaptor": "x"}]}, ["systems[0]: unknown key(s) ['adaptor']", "'adapter'"]),
    ({**BASE, "toxicity": {"limit": "ten"}}, ["suite.yaml: toxicity.limit='ten' has type str; expected int | null"]),
    ({**BASE, "num_resamples": 1.5}, ["num_resamples=1.5 has type float; expected int"]),
    ({**BASE, "tasks": ["toxicity", "stereoset"]}, ["['stereoset'] not valid", "'occupation'"]),
    ({"systems": [{"name": "a", "model": "m"}, {"name": "a", "model": "n"}]}, ["names must be unique", "['a']"]),
    ({"systems": [{"name": "bad name", "model": "m"}]}, ["system name 'bad name' must match"]),
    ({"systems": [{"name": "u", "model": "m", "uddia": "demo", "uddia_config": {"learning_rate": 1}}]},
     ["unknown uddia_config key(s) ['learning_rate']", "'lr'"]),
    ({"systems": [{"model": "m"}]}, ["systems[0]: missing required key(s) ['name']"]),
    ({}, ["systems: give at least one"]),
    ({**BASE, "bbnli": {"scoring": "vibes"}}, ["bbnli.scoring='vibes'"]),
])
def test_yaml_errors_name_the_key_and_the_fix(tmp_path, data, fragments):
    with pytest.raises(ValueError) as info:
        load_config(_write(tmp_path, data))
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_yaml_must_be_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="must be a mapping"):
        load_config(path)
    with pytest.raises(ValueError, match="not found"):
        load_config(tmp_path / "absent.yaml")


def test_parse_system_strings():
    spec = parse_system("name=uddia,model=smollm2,uddia=demo,uddia_lr=0.01,uddia_redo_ppl_threshold=none")
    assert spec == SystemSpec("uddia", model="smollm2", uddia="demo", uddia_config={"lr": 0.01, "redo_ppl_threshold": None})
    with pytest.raises(ValueError, match="unknown key 'modle'"):
        parse_system("name=x,modle=smollm2")
    with pytest.raises(ValueError, match="is not key=value"):
        parse_system("name=x,smollm2")


def test_cli_flags_override_the_yaml(tmp_path):
    parse = make_parser().parse_args
    args = parse(["--config", str(SUITES / "demo_smollm2.yaml"), "--out", str(tmp_path), "--set", "toxicity.limit=2",
                  "--set", "toxicity.prompts=from-set.jsonl", "--prompts", "flag.jsonl", "--tasks", "toxicity,bbnli",
                  "--num-resamples", "10", "--system", "name=a,model=smollm2"])
    config = build_config(args)
    assert config.settings["toxicity"]["limit"] == 2 and config.settings["toxicity"]["prompts"] == "flag.jsonl"  # flag > --set > YAML
    assert config.tasks == ["toxicity", "bbnli"] and config.num_resamples == 10 and config.out == str(tmp_path)
    assert [s.name for s in config.systems] == ["a"]
    single = build_config(parse(["--model", "smollm2", "--uddia", "demo"]))
    assert single.systems == [SystemSpec("uddia", model="smollm2", uddia="demo")]
    with pytest.raises(ValueError, match="either --system"):
        build_config(parse(["--model", "m", "--system", "name=a,model=m"]))
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['nope'\]"):
        build_config(parse(["--model", "m", "--set", "toxicity.nope=1"]))


def test_config_round_trips_through_a_dict():
    config = load_config(SUITES / "demo_smollm2.yaml")
    again = SuiteConfig.from_dict(config.to_dict())
    assert again.to_dict() == config.to_dict()
