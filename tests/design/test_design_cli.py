"""``biasstats design``: every bad input is one line naming the option or key (exit 2, nothing
written), checked before anything is sampled; a tiny run writes its table, per-simulation
results, recommendation and figure."""

from __future__ import annotations

import json

import polars as pl
import pytest

from biasstats.cli import main
from biasstats.simulate.designs import refusals

FORMULA = "refusal ~ condition + (1|prompt)"


@pytest.fixture
def spec_path(tmp_path):
    df, _ = refusals(seed=3, prompts=6, reps=5)
    df.rename({"refused": "refusal"}).write_csv(tmp_path / "ref.csv")
    path = tmp_path / "ref.toml"
    path.write_text(f"""
[analysis]
name = "ref"
[data]
source = "ref.csv"
outcome = "refusal"
[model]
formula = "{FORMULA}"
family = "bernoulli"
[model.priors]
b = "Normal(0, 1)"
[effects]
reference = {{ condition = "neutral" }}
""")
    return path


GROUPING = "grouping factors: prompt; or 'trials' for the rows per design cell"
BAD = [
    (["--vary", "llm=4"],
     f"--vary llm: 'llm' is not a grouping factor of [model] formula '{FORMULA}' ({GROUPING})"),
    (["--vary", "condition=3"],
     f"--vary condition: 'condition' is a fixed factor of [model] formula '{FORMULA}': its "
     f"levels are the design and cannot be varied ({GROUPING})"),
    (["--vary", "trials=5,0"], "--vary trials: sizes must be positive integers, got '0'"),
    (["--vary", "trials=5,x"], "--vary trials: sizes must be positive integers, got 'x'"),
    (["--vary", "trials"], "--vary 'trials': expected FACTOR=N1,N2,... (e.g. trials=5,10,20 "
                           "or prompt=8,16)"),
    (["--vary", "trials=5", "--vary", "trials=10"],
     "--vary trials: given twice; give every size in one option (trials=N1,N2,...)"),
    (["--vary", "prompt=4,1"],
     "--vary prompt=1: this design cannot be simulated: grouping factor 'prompt' in term "
     "'(1|prompt)' has only one level ('prompt001'); a group term needs at least 2"),
    (["--vary", "prompts=4", "--estimand", "prompt"],
     "--estimand: 'prompt': 'prompt' is varied (--vary prompt), so its levels change with the "
     "design; plan for a contrast of factors that are not varied"),
    (["--vary", "trials=4", "--estimand", "llm"],
     "--estimand contrasts: 'llm' is not a factor of the model (its factors: condition, "
     "prompt; within strata: 'a | b')"),
    (["--vary", "trials=4", "--power", "1.5"],
     "--power 1.5: expected a probability between 0 and 1"),
    (["--vary", "trials=4", "--width", "0"],
     "--width 0: expected a positive number (in the estimand's units)"),
    (["--vary", "trials=4", "--sims", "1"], "--sims 1: expected an integer of at least 2"),
    (["--vary", "trials=4", "--draws", "10"], "--draws 10: expected an integer from 50 to 100000"),
]


@pytest.mark.parametrize(("args", "message"), BAD)
def test_bad_input_is_one_line_naming_the_option(spec_path, tmp_path, capsys, args, message):
    out = tmp_path / "out"
    code = main(["design", str(spec_path), *args, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == f"error: {message}"
    assert not out.exists()


def test_a_fixed_factor_level_lost_by_a_size_names_the_size(tmp_path, capsys):
    """Prompts nested in tests: a size that leaves out every prompt of a test loses that
    test's fixed-effect columns."""
    rows = [{"test": f"t{t}", "prompt": f"q{t}{p}", "y": float(t + p)}
            for t in range(2) for p in range(3) for _ in range(2)]
    pl.DataFrame(rows).write_csv(tmp_path / "n.csv")
    path = tmp_path / "n.toml"
    path.write_text('[data]\nsource = "n.csv"\noutcome = "y"\n[model]\n'
                    'formula = "y ~ test + (1|prompt)"\nfamily = "gaussian"\n')
    code = main(["design", str(path), "--vary", "prompt=2,6", "--out", str(tmp_path / "o")])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "error: --vary prompt=2: this design cannot be simulated: it lacks the fixed-effect "
        "column 'test[T.t1]' (its rows come only with levels this size leaves out)")


def test_tiny_design_run_writes_its_outputs(spec_path, tmp_path, capsys):
    out = tmp_path / "design"
    code = main(["design", str(spec_path), "--vary", "trials=2,6", "--sims", "3", "--draws",
                 "50", "--power", "0.5", "--seed", "11", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert "parameters drawn from the prior" in text  # nothing fitted: said so
    for k in range(1, 7):
        assert f"[{k}/6] trials=" in text
    assert "[4/6] trials=6 sim 1/3" in text
    table = pl.read_csv(out / "design.csv")
    assert table["trials"].to_list() == [2, 6]
    # 6 prompts x 2 conditions = 12 cells, times the rows per cell
    assert table["rows"].to_list() == [24, 72]
    assert table["sims"].to_list() == [3, 3]
    for col in ("width_median", "width_q25", "width_q75", "p_excludes_zero",
                "p_excludes_zero_mcse", "coverage", "coverage_mcse"):
        assert table[col].null_count() == 0, col
    sims = pl.read_csv(out / "sims.csv")
    assert sims.height == 6 and set(sims["sim"]) == {0, 1, 2}
    # the same parameter draw serves simulation s at every size
    assert sims.filter(pl.col("trials") == 2)["truth"].to_list() == \
        sims.filter(pl.col("trials") == 6)["truth"].to_list()
    assert (sims["width"] - (sims["hdi_high"] - sims["hdi_low"])).abs().max() < 1e-9
    info = json.loads((out / "design.json").read_text())
    assert info["parameters_from"] == "prior"
    assert info["target"] == {"kind": "power", "value": 0.5}
    assert info["recommendation"] in text
    for ext in ("pdf", "svg", "png"):
        assert (out / f"assurance.{ext}").stat().st_size > 0
    tex = (out / "design.tex").read_text()
    assert r"\toprule" in tex and "P(interval excludes 0)" in tex
