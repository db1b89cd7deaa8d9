"""A source column named ``refused`` that is not the ledger's refusal flag is one line, never
silently replaced by the flag (the design validation's pilot modelled the flag, all zeros,
instead of its own 15% refusal rate)."""

from __future__ import annotations

import polars as pl
import pytest

from biasstats.errors import DataError
from biasstats.ingest import ingest

SPEC = """[analysis]
name = "own"
[data]
source = "d.csv"
outcome = "{outcome}"
{derive}
[model]
formula = "{outcome} ~ condition"
family = "bernoulli"
"""


def _write(tmp_path, outcome, derive=""):
    pl.DataFrame({"condition": ["a", "b"] * 4,
                  "refused": [0, 1, 0, 0, 1, 1, 0, 1]}).write_csv(tmp_path / "d.csv")
    path = tmp_path / "own.toml"
    path.write_text(SPEC.format(outcome=outcome, derive=derive))
    return path


def test_a_source_column_named_refused_is_one_line(tmp_path):
    path = _write(tmp_path, "refused")
    with pytest.raises(DataError) as e:
        ingest(path)
    assert str(e.value) == (
        f"{path}: [data] source column 'refused' differs from the ledger's refusal flag on 4 "
        "rows, and biasstats names that flag 'refused' (1 = refused, 0 = answered): copy the "
        'column under another name, e.g. [data.derive] refusal = "refused", and model that')


def test_the_suggested_copy_models_the_sources_own_values(tmp_path):
    path = _write(tmp_path, "refusal", '[data.derive]\nrefusal = "refused"')
    try:
        table = ingest(path).table
    except DataError as e:  # the source's column still clashes: the suggestion must work
        pytest.fail(f"the suggested fix does not work: {e}")
    assert table["refusal"].cast(pl.Int64).to_list() == [0, 1, 0, 0, 1, 1, 0, 1]
