"""UDDIAConfig: the paper's defaults, validation with a named field, the redo schedule."""
import pytest

from fairalign.decoding import UDDIAConfig


def test_paper_defaults():
    c = UDDIAConfig()
    assert (c.lr, c.steps_per_token, c.fusion_weight, c.redo_ppl_threshold, c.redo_layer_step) == (0.06, 1, 0.9, 30.0, 3)
    assert (c.debias_weight, c.debias_trigger, c.debias_temperature, c.debias_token_threshold) == (0.05, 0.1, 0.1, 0.75)
    assert c.trigger_threshold is None and c.lookahead_steps == 1 and c.debias_groups == "gender"
    # the paper tunes 18 of GPT-2 large's 36 layers and redoes with 18, 15, ..., 3
    assert c.resolve_tuned_layers(36) == 18
    assert c.redo_schedule(36) == [18, 15, 12, 9, 6, 3]


@pytest.mark.parametrize(
    "kwargs, field",
    [({"lr": -0.1}, "lr"), ({"steps_per_token": 0}, "steps_per_token"), ({"num_tuned_layers": 0}, "num_tuned_layers"),
     ({"tuned_params": "lora"}, "tuned_params"), ({"trigger_threshold": 1.5}, "trigger_threshold"),
     ({"fusion_weight": 1.2}, "fusion_weight"), ({"redo_ppl_threshold": 0.5}, "redo_ppl_threshold"),
     ({"redo_layer_step": 0}, "redo_layer_step"), ({"debias_weight": -1.0}, "debias_weight"),
     ({"debias_temperature": 0.0}, "debias_temperature"), ({"debias_token_threshold": 1.0}, "debias_token_threshold"),
     ({"lookahead_steps": -1}, "lookahead_steps"), ({"target_class": -1}, "target_class")],
)
def test_validation_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"UDDIAConfig.{field}="):
        UDDIAConfig(**kwargs)


def test_schedules():
    assert UDDIAConfig(num_tuned_layers=5, redo_layer_step=2).redo_schedule(7) == [5, 3, 1]
    assert UDDIAConfig(num_tuned_layers=50).resolve_tuned_layers(30) == 30  # capped at the layer count
    assert UDDIAConfig(redo_ppl_threshold=None).redo_schedule(30) == [15]
    assert UDDIAConfig().resolve_tuned_layers(1) == 1


def test_dict_round_trip_and_unknown_keys():
    c = UDDIAConfig(lr=0.01, trigger_threshold=0.5)
    assert UDDIAConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="unknown UDDIAConfig keys"):
        UDDIAConfig.from_dict({"learning_rate": 0.1})
