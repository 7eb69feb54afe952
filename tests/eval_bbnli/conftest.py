"""Fixtures for the BBNLI tests (helpers live in bbnli_helpers.py: a unique module name)."""
import pytest

from bbnli_helpers import hand_rows

from fairalign.eval.bbnli.data import BBNLIDataset


@pytest.fixture
def hand_dataset():
    rows, preds = hand_rows()
    return BBNLIDataset(rows, source="hand"), preds
