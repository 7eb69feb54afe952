"""Test data files written to disk, shared by the test folders (tests/ is on sys.path: pytest puts the folder
of tests/conftest.py there)."""
from pathlib import Path


def write_bls_csv(path, rows) -> Path:
    """Rows (occupation, total (thousands), % women, White, Black, Asian, Hispanic, level) as a clean BLS CSV
    for 2022 at `path`; returns `path`."""
    import pandas as pd

    from fairalign.eval.occupation.bls import CSV_COLUMNS

    df = pd.DataFrame(rows, columns=[*CSV_COLUMNS, "level"])
    df.insert(0, "year", 2022)
    df.to_csv(path, index=False)
    return Path(path)
