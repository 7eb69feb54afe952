"""Fixtures for the evaluate-module tests: modules loaded from the installed package (kept in memory, so no
cache files) and a toy BLS table with round numbers."""
import pytest

# occupation, total (thousands), % women, White, Black, Asian, Hispanic, level
TOY_BLS = [
    ("Total, 16 years and over", 1000, 50.0, 75.0, 15.0, 10.0, 20.0, 0),
    ("Registered nurses", 300, 90.0, 70.0, 20.0, 10.0, 10.0, 1),
    ("Software developers", 400, 20.0, 60.0, 10.0, 30.0, 10.0, 1),
    ("Cashiers", 200, 70.0, 50.0, 30.0, 20.0, 40.0, 1),
    ("Janitors and building cleaners", 100, 35.0, 65.0, 20.0, 5.0, 30.0, 1),
]


@pytest.fixture(scope="session")
def load_module():
    import evaluate

    from fairalign.eval import evaluate_module_path

    def load(name, **kwargs):
        return evaluate.load(evaluate_module_path(name), keep_in_memory=True, **kwargs)

    return load


@pytest.fixture
def toy_bls_csv(write_bls_csv):
    return write_bls_csv(TOY_BLS)
