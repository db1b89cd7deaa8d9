"""Same seed, same draws: the shipped analyses' posteriors against fingerprints recorded earlier.

Truth: a digest of each shipped analysis' posterior draws, recorded by this file run as a
script (``python tests/run/test_same_draws.py --record``) at a commit whose draws are the
reference, with the library stack and machine it ran on. A refactor that keeps behaviour
(the house moves, compute-once, a faster gradient that computes the same numbers) keeps every
digest; one that changes a single bit of a draw fails here, naming the analysis and the
variables that moved. A change meant to alter the draws (a new prior default, another
parameterisation) re-records them and says so in its commit.

Every analysis in ``analyses/`` whose data the repository holds (its ``data/`` files or a
``[simulate]`` preset) is fitted with its own model, seed and backend rule, with shortened
chains (2 chains, 150 tuning and 60 kept draws) so the check takes minutes: the draws depend on
the whole path (spec, ingest, design, priors, centring, compiled model, sampler), not on its
length. Only the first attempt is fingerprinted (``refit = false``): such short chains fail
the convergence gate, and what the automatic refit does next is the refit plan's own business
(tests/inference). Joint analyses are fitted as one model, as the report fits them.

Digests are exact, so they hold only on the stack they were recorded on: another version of
NumPy, PyTensor, PyMC, nutpie or numba, or another CPU architecture, rounds differently, and
the test skips saying so (record again there to use it). Run: ``nox -s draws``.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
RECORD = Path(__file__).with_name("same_draws.json")
STACK = ("numpy", "pytensor", "pymc", "nutpie", "numba", "polars")
SHORT = {"chains": 2, "tune": 150, "draws": 60, "refit": False}

pytestmark = pytest.mark.draws


def stack() -> dict[str, str]:
    from biasstats.inference.from_spec import versions

    return {"machine": platform.machine(), "python": platform.python_version(),
            **versions(STACK)}


def shipped() -> list[Path]:
    """The shipped specs whose data the repository holds (no download, no ../shared)."""
    import tomllib

    out = []
    for path in sorted((ROOT / "analyses").glob("*.toml")):
        doc = tomllib.loads(path.read_text())
        sources = [doc.get("data", {}).get("source")] if "parts" not in doc else [
            p.get("data", {}).get("source") for p in doc["parts"].values()]
        local = all(s is not None and (path.parent / s).is_file() for s in sources)
        if "simulate" in doc or local:
            out.append(path)
    return out


def _short(spec):
    fit = spec.content.fit.model_copy(update=SHORT)
    return type(spec)(path=spec.path, content=spec.content.model_copy(update={"fit": fit}),
                      text=spec.text)


def digests(spec_path: Path) -> dict[str, str]:
    """sha256 of every posterior variable's draws (as stored: float32, chain x draw x ...)."""
    from biasstats.inference.from_spec import fit_spec
    from biasstats.inference.joint import fit_joint, prepare_parts
    from biasstats.ingest import ingest, ingest_parts
    from biasstats.spec import load_spec

    spec = _short(load_spec(spec_path))
    if spec.parts is not None:
        ings = ingest_parts(spec)
        joint = prepare_parts(spec, {p: i.table for p, i in ings.items()},
                              {p: i.ledger for p, i in ings.items()})
        idata = fit_joint(spec, joint, progress=False).fit.idata
    else:
        idata = fit_spec(spec, ingest(spec).table, progress=False).fit.idata
    post = idata["posterior"].to_dataset()
    out = {}
    for name in sorted(post.data_vars):
        values = np.ascontiguousarray(post[name].values.astype(np.float32))
        h = hashlib.sha256(repr(values.shape).encode())
        h.update(values.tobytes())
        out[name] = h.hexdigest()
    return out


def _recorded() -> dict:
    if not RECORD.is_file():
        pytest.skip(f"no recorded fingerprints ({RECORD.name}): record them with "
                    f"'python {Path(__file__).relative_to(ROOT)} --record'")
    return json.loads(RECORD.read_text())


@pytest.mark.parametrize("spec_path", shipped(), ids=lambda p: p.stem)
def test_shipped_analysis_gives_the_recorded_draws(spec_path):
    rec = _recorded()
    if rec["stack"] != stack():
        pytest.skip(f"fingerprints recorded on {rec['stack']}, this is {stack()}: draws are "
                    "exact only on the same stack (record again to use this check here)")
    if spec_path.stem not in rec["analyses"]:
        pytest.fail(f"{spec_path.name} is shipped but has no recorded fingerprint: record "
                    "them again (and say in the commit that a new analysis was added)")
    want = rec["analyses"][spec_path.stem]
    got = digests(spec_path)
    moved = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    assert not moved, (f"{spec_path.name}: the draws of {', '.join(moved)} differ from those "
                       f"recorded at {rec['commit']}")


def test_every_recorded_analysis_is_still_shipped():
    rec = _recorded()
    gone = sorted(set(rec["analyses"]) - {p.stem for p in shipped()})
    assert not gone, f"recorded but no longer shipped: {gone} (record again)"


def record() -> None:
    import subprocess

    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "biasstats"],
                           capture_output=True, text=True).stdout.strip()
    analyses = {}
    for p in shipped():
        print(f"fitting {p.name} …", file=sys.stderr)
        analyses[p.stem] = digests(p)
    doc = {"commit": commit + (" (with uncommitted changes)" if dirty else ""),
           "settings": SHORT, "stack": stack(), "analyses": analyses}
    RECORD.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"wrote {RECORD}", file=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: python tests/run/test_same_draws.py --record")
    sys.path.insert(0, str(ROOT))
    record()
