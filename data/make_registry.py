"""Regenerate ``data/registry.toml`` from a local mirror of the third-party data.

The registry is generated, not hand-typed: dataset metadata lives in :data:`DATASETS` below,
file lists come from globbing the mirror, and every mirrored file gets its SHA-256. Files that
are registered but absent from the mirror keep the git blob id pinned in :data:`PINNED`.

Usage (stdlib only, no biasstats import needed)::

    python data/make_registry.py                 # rewrite data/registry.toml
    python data/make_registry.py --check         # exit 1 if the file is out of date
    python data/make_registry.py --mirror DIR    # DIR holds bai2024/ (default: $BIASSTATS_DATA
                                                 # or ../shared/data beside the repo)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REGISTRY = HERE / "registry.toml"

COMMIT = "0d2772e8eb21186b6db1fab7551633ffda16c06f"
UPSTREAM = f"https://raw.githubusercontent.com/baixuechunzi/llm-implicit-bias/{COMMIT}/"
MIRROR = "bai2024/"
CITATION = (
    "Bai, X., Wang, A., Sucholutsky, I., & Griffiths, T. L. (2025). Explicitly unbiased large "
    "language models still form biased associations. PNAS 122(8), e2416228122. "
    "doi:10.1073/pnas.2416228122 (preprint arXiv:2402.04105)"
)
LICENSE = "MIT (c) 2025 Xuechunzi Bai; the MIT notice must accompany redistributed copies"

#: Files registered although the mirror lacks them: their git blob ids at ``COMMIT``.
PINNED = {
    "data/result_implicit.csv": "gitblob:20b8c7e10d797ec6757cfc7038f560abb3f1c619",
    "data/result_decision.csv": "gitblob:325ef250ad2ea5e731e062d5073ee91b25df2d92",
}

#: One entry per dataset: metadata plus ``files`` (globs relative to the mirror sub-folder).
#: ``upstream=False`` marks mirror-only data (no download URL); ``license`` overrides LICENSE;
#: datasets without ``adapter`` (stimulus lists, figure summaries) are not trial data.
DATASETS: list[dict] = [
    {
        "name": "bai2024_gpt4o",
        "description": "Raw GPT-4o word-association (IAT-style) replies: 21 stereotypes x 4 "
        "prompt variants x 50 trials = 4,200 trials in 84 CSV files.",
        "adapter": "bai2024_iat",
        "files": ["data/result_gpt4o/*.csv"],
    },
    {
        "name": "bai2024_chained",
        "description": "GPT-4 chained prompts (word association, two profiles, a decision): "
        "617 trials with both an implicit (iat_bias) and a decision (decision_bias) score.",
        "adapter": "bai2024_chained",
        "files": ["data/result_chained.csv"],
    },
    {
        "name": "bai2024_absolute",
        "description": "GPT-4 single-candidate (absolute) yes/no decision control: 1,660 replies.",
        "adapter": "bai2024_absolute",
        "files": ["data/result_absolute.csv"],
    },
    {
        "name": "bai2024_stimuli",
        "description": "IAT stimulus lists: default (A) and stigma (B) group words, attributes "
        "(C: first half positive, second half negative) per stereotype.",
        "files": ["stimuli/iat_stimuli.csv"],
    },
    {
        "name": "bai2024_stimuli_synonym",
        "description": "IAT stimulus lists plus synonyms (D, valence of the C word in the same "
        "row); has rows appended later, so do not split its columns in halves.",
        "files": ["stimuli/iat_stimuli_synonym.csv"],
    },
    {
        "name": "bai2024_stimuli_analysis",
        "description": "Extended IAT stimulus list, split cleanly in positive/negative halves "
        "per stereotype.",
        "files": ["stimuli/iat_stimuli_analysis.csv"],
    },
    {
        "name": "bai2024_digitized",
        "description": "NOT made by the authors and not in their repository: approximate "
        "model-level and model x stereotype means (with CIs) read off the published vector "
        "figures (precision about +-0.003 implicit, +-0.002 decision). Mirror-only.",
        "files": ["digitized_from_figures/*.csv"],
        "license": "Derived data, not by the authors: values read from their MIT-licensed "
        "figures ((c) 2025 Xuechunzi Bai)",
        "upstream": False,
    },
    {
        "name": "bai2024_implicit",
        "description": "The authors' main implicit-bias table: 33,600 scored trials for 8 LLMs "
        "(21 stereotypes x 4 variants x 50). Download only (not in the mirror).",
        "adapter": "bai2024_implicit_table",
        "files": ["data/result_implicit.csv"],
    },
    {
        "name": "bai2024_decision",
        "description": "The authors' main decision-bias table: 33,600 judged decisions for 8 "
        "LLMs. Download only (not in the mirror).",
        "adapter": "bai2024_decision_table",
        "files": ["data/result_decision.csv"],
    },
]


def sha256(path: Path) -> str:
    """``sha256:<hex>`` of a file."""
    with path.open("rb") as fh:
        return "sha256:" + hashlib.file_digest(fh, "sha256").hexdigest()


def expand(folder: Path, pattern: str) -> dict[str, str]:
    """Map each file matching ``pattern`` (or its pinned id) to its checksum."""
    if pattern in PINNED:
        return {pattern: PINNED[pattern]}
    found = sorted(p for p in folder.glob(pattern) if p.is_file())
    if not found:
        raise SystemExit(f"error: nothing in {folder} matches {pattern!r}")
    return {p.relative_to(folder).as_posix(): sha256(p) for p in found}


def quote(text: str) -> str:
    """A TOML basic string (JSON string escaping is valid TOML for these texts)."""
    return json.dumps(text, ensure_ascii=False)


def render_dataset(folder: Path, spec: dict) -> list[str]:
    """The TOML lines of one dataset."""
    files: dict[str, str] = {}
    for pattern in spec["files"]:
        files.update(expand(folder, pattern))
    lines = [f"[datasets.{spec['name']}]", f"description = {quote(spec['description'])}"]
    lines += [f"citation = {quote(CITATION)}", f"license = {quote(spec.get('license', LICENSE))}"]
    if spec.get("upstream", True):
        lines.append(f"base_url = {quote(UPSTREAM)}")
    lines.append(f"mirror = {quote(MIRROR)}")
    if "adapter" in spec:
        lines.append(f"adapter = {quote(spec['adapter'])}")
    lines += ["", f"[datasets.{spec['name']}.files]"]
    lines += [f"{quote(path)} = {quote(checksum)}" for path, checksum in files.items()]
    return lines + [""]


def render(mirror_root: Path) -> str:
    """The whole registry text for the mirror at ``mirror_root`` (the folder holding bai2024/)."""
    folder = mirror_root / MIRROR
    header = [
        "# Registry of third-party datasets. GENERATED by data/make_registry.py from a mirror:",
        "# do not edit by hand. Checksums: sha256:<hex>, or gitblob:<sha1> (git's blob id) for",
        "# files known only by their id at the pinned upstream commit.",
        f"# Upstream: {UPSTREAM}",
        "",
        "schema_version = 1",
        "",
    ]
    body = [line for spec in DATASETS for line in render_dataset(folder, spec)]
    return "\n".join(header + body).rstrip("\n") + "\n"


def default_mirror() -> Path:
    """``$BIASSTATS_DATA`` if set, else ``../shared/data`` beside the repository."""
    return Path(os.environ.get("BIASSTATS_DATA") or HERE.parents[1] / "shared" / "data")


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` compare) the registry; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, default=default_mirror())
    parser.add_argument("--check", action="store_true", help="fail if registry.toml is stale")
    args = parser.parse_args(argv)
    text = render(args.mirror)
    if args.check:
        stale = not REGISTRY.exists() or REGISTRY.read_text(encoding="utf-8") != text
        print(f"{REGISTRY} is {'OUT OF DATE' if stale else 'up to date'}")
        return int(stale)
    REGISTRY.write_text(text, encoding="utf-8")
    print(f"wrote {REGISTRY}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
