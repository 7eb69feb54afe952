"""A tiny BLS table with round numbers, so every metric can be computed by hand."""
import pytest

# occupation, total (thousands), % women, White, Black, Asian, Hispanic, level
TOY = [
    ("Total, 16 years and over", 1000, 50.0, 75.0, 15.0, 10.0, 20.0, 0),
    ("Registered nurses", 300, 90.0, 70.0, 20.0, 10.0, 10.0, 1),
    ("Software developers", 500, 20.0, 60.0, 10.0, 30.0, 10.0, 1),
    ("Cashiers", 200, 70.0, 50.0, 30.0, 20.0, 40.0, 1),
]


@pytest.fixture
def toy_csv(write_bls_csv):
    return write_bls_csv(TOY)


class Scripted:
    """A callable generator: the i-th call answers each prompt with the i-th entry of its script."""

    def __init__(self, script):
        self.script = script  # list of (substring of the prompt, [answers by sample])
        self.calls = 0
        self.prompts = []

    def __call__(self, prompts):
        self.prompts += list(prompts)
        out = []
        for p in prompts:
            answers = next((a for key, a in self.script if key in p), [" ..."])
            out.append(answers[self.calls % len(answers)])
        self.calls += 1
        return out


@pytest.fixture
def scripted():
    return Scripted
