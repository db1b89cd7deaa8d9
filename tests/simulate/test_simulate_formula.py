"""Simulation from a spec's formula: `biasstats simulate`, determinism, --set, recovery."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from biasstats.cli import main
from biasstats.errors import SpecError
from biasstats.simulate.from_formula import parse_set, simulate_from_formula, simulate_from_spec

CANONICAL = "congruent ~ 1 + (1|llm) + (1|category/stereotype) + (1|variant)"

SPEC = """
[analysis]
name = "sim_small"
[simulate]
preset = "bai2024"
seed = 3
trials = 2
variants = ["replication", "synonym"]
llms = ["GPT-4", "Alpaca7B"]
[model]
formula = "{formula}"
family = "bernoulli"
"""


@pytest.fixture
def spec_path(tmp_path: Path) -> Path:
    p = tmp_path / "sim_small.toml"
    p.write_text(SPEC.format(formula=CANONICAL), encoding="utf-8")
    return p


def test_cli_simulate_is_deterministic_and_writes_table_and_truth(spec_path, tmp_path, capsys):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert main(["simulate", str(spec_path), "--seed", "7", "--out", str(a)]) == 0
    assert main(["simulate", str(spec_path), "--seed", "7", "--out", str(b)]) == 0
    assert main(["simulate", str(spec_path), "--seed", "8", "--out", str(c)]) == 0
    for name in ("simulated.parquet", "truth.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / "truth.json").read_bytes() != (c / "truth.json").read_bytes()
    table = pl.read_parquet(a / "simulated.parquet")
    # the design: 2 LLMs x 21 stereotypes x 2 variants x 2 trials x 16 words, minus refusals
    assert table.columns[:11] == ["source_row", "llm", "category", "stereotype", "variant",
                                  "trial", "item", "congruent", "status", "reason", "raw"]
    assert 2500 < table.height <= 2 * 21 * 2 * 2 * 16
    assert set(table["congruent"].unique().to_list()) <= {0.0, 1.0}
    assert table["status"].unique().to_list() == ["ok"]
    truth = json.loads((a / "truth.json").read_text())
    params = truth["parameters"]
    assert set(params) == {"Intercept", "sd_llm", "r_llm", "sd_category", "r_category",
                           "sd_category:stereotype", "r_category:stereotype", "sd_variant",
                           "r_variant"}
    assert set(params["r_llm"]) == {"GPT-4", "Alpaca7B"}
    assert "race:skintone" in params["r_category:stereotype"]
    assert truth["seed"] == 7 and truth["analysis"] == "sim_small"
    assert "wrote" in capsys.readouterr().out


def test_given_values_appear_exactly_in_truth(spec_path, tmp_path):
    out = tmp_path / "given"
    argv = ["simulate", str(spec_path), "--seed", "1", "--out", str(out),
            "--set", "sd_llm=0.5", "--set", "Intercept=0.8", "--set", "r_variant=0.25,-0.25"]
    assert main(argv) == 0
    truth = json.loads((out / "truth.json").read_text())
    p = truth["parameters"]
    assert p["sd_llm"] == 0.5 and p["Intercept"] == 0.8
    assert p["r_variant"] == {"replication": 0.25, "synonym": -0.25}
    assert truth["given"] == {"sd_llm": 0.5, "Intercept": 0.8, "r_variant": [0.25, -0.25]}
    # unspecified parameters are drawn from the prior (and reported)
    assert 0 < p["sd_category"] and len(p["r_category"]) == 4


def test_unknown_set_parameter_is_one_line_exit_2(spec_path, tmp_path, capsys):
    code = main(["simulate", str(spec_path), "--seed", "1", "--out", str(tmp_path / "x"),
                 "--set", "sd_lm=0.5"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    assert "'sd_lm'" in err
    for valid in ("Intercept", "sd_llm", "r_llm", "sd_category:stereotype", "sd_variant"):
        assert valid in err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("item, message", [
    ("sd_llm", "expected NAME=VALUE"),
    ("sd_llm=abc", "must be a number"),
])
def test_bad_set_syntax(item, message):
    with pytest.raises(SpecError, match=message):
        parse_set([item])


def test_bad_set_values_name_the_parameter():
    design = pl.DataFrame({"llm": ["a", "b", "c"] * 4, "variant": ["x", "y"] * 6})
    f = "congruent ~ 1 + (1|llm) + (1|variant)"
    with pytest.raises(SpecError, match="'sd_llm' must be positive"):
        simulate_from_formula(f, design, given={"sd_llm": -1.0})
    with pytest.raises(SpecError, match="'r_llm' takes 3 comma-separated values, got 2"):
        simulate_from_formula(f, design, given={"r_llm": [0.1, 0.2]})
    with pytest.raises(SpecError, match="'r_llm' must sum to zero"):
        simulate_from_formula(f, design, given={"r_llm": [0.1, 0.2, 0.3]})


def test_simulate_from_formula_rows_not_cells_and_slopes():
    rng = np.random.default_rng(0)
    design = pl.DataFrame({"llm": rng.choice(["a", "b", "c"], 300),
                           "x": rng.normal(size=300)})
    s = simulate_from_formula("y ~ 1 + x + (1|llm)", design, seed=2,
                              given={"b_x": 1.5, "sd_llm": 0.3})
    assert s.table.height == 300 and set(s.table["y"].unique().to_list()) <= {0.0, 1.0}
    assert s.truth["parameters"]["b"] == {"x": 1.5}
    assert s.truth["parameters"]["sd_llm"] == 0.3
    g = simulate_from_formula("y ~ 1 + x + (1|llm)", design, "gaussian", seed=2,
                              given={"sigma": 0.5})
    assert g.table["y"].dtype == pl.Float64 and g.truth["parameters"]["sigma"] == 0.5


def test_simulate_from_spec_api(spec_path):
    s1 = simulate_from_spec(spec_path, 5, {"sd_variant": 0.2})
    s2 = simulate_from_spec(spec_path, 5, {"sd_variant": 0.2})
    assert s1.table.equals(s2.table) and s1.truth == s2.truth
    assert s1.truth["parameters"]["sd_variant"] == 0.2


def test_recovery_of_given_parameters(tmp_path):
    """Simulate the canonical formula with given parameters on a small design; the fit's
    95% HDIs cover the truth (the calibration itself is checked by SBC, tests/checks/test_sbc.py)."""
    from biasstats.inference import fit

    cats = {"race": ["racism", "skintone"], "gender": ["career", "science"]}
    rows = [(m, c, s, v) for m in ("m1", "m2", "m3") for c, ss in cats.items() for s in ss
            for v in ("v1", "v2") for _ in range(60)]
    design = pl.DataFrame(rows, schema=["llm", "category", "stereotype", "variant"],
                          orient="row")
    given = {"Intercept": 0.6, "sd_llm": 0.7, "r_llm": [0.8, -0.1, -0.7],
             "sd_category": 0.3, "sd_category:stereotype": 0.4, "sd_variant": 0.2}
    sim = simulate_from_formula(CANONICAL, design, seed=12, given=given)
    f = fit(CANONICAL, sim.table, chains=2, tune=500, draws=500, seed=3, progress=False)
    summ = f.summary()
    truth = sim.truth["parameters"]
    for k, v in given.items():
        assert truth[k] == (v if not isinstance(v, list) else dict(zip(truth[k], v,
                                                                       strict=True)))
    flat = {}
    for name, v in truth.items():
        if isinstance(v, dict):
            flat.update({f"{name}[{lvl}]": x for lvl, x in v.items()})
        else:
            flat[name] = v
    assert set(flat) == set(summ.index)
    outside = [n for n, v in flat.items()
               if not summ.loc[n, "hdi95_lb"] <= v <= summ.loc[n, "hdi95_ub"]]
    shown = summ.loc[outside, ["mean", "hdi95_lb", "hdi95_ub"]]
    # the given parameters and every SD are covered; of the 18 scalars a 95% interval may
    # miss a few by chance (at most 3 holds with probability > 0.99 when calibrated)
    must = ["Intercept", "r_llm[m1]", "r_llm[m2]", "r_llm[m3]",
            *[n for n in flat if n.startswith("sd_")]]
    assert not set(must) & set(outside), shown
    assert len(outside) <= 3, shown
