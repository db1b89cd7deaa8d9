"""Generators of third-party source shapes for the ingest tests (each written to a tmp folder,
each ingested by a spec alone). Each generator also returns the truth a test checks against,
computed from what it wrote, not by biasstats."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

# ------------------------------------------------------------------ per-condition CSVs

CONDITIONS = {
    # llm: (column naming the prompt, {test: n rows})
    "gpt4o": ("prompt", {"race": 5, "gender": 3}),
    "claude3": ("prompt_id", {"race": 4, "age": 2}),
}


def per_condition_csvs(root: Path) -> dict[str, int]:
    """``runs/<llm>/<test>.csv`` files; the prompt column is named differently per model and
    claude's files carry an extra column. Returns rows written per file (relative path)."""
    counts = {}
    for llm, (prompt_col, tests) in CONDITIONS.items():
        for test, n in tests.items():
            path = root / "runs" / llm / f"{test}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            header = [prompt_col, "biased"] + (["temperature"] if llm == "claude3" else [])
            lines = [",".join(header)]
            for i in range(n):
                row = [f"{test}-{i}", str(i % 2)] + (["0.7"] if llm == "claude3" else [])
                lines.append(",".join(row))
            path.write_text("\n".join(lines) + "\n")
            counts[f"runs/{llm}/{test}.csv"] = n
    return counts


# ------------------------------------------------------------------ JSON ranking requests

GROUPS = {"Maria": "hispanic", "Emily": "white", "Lakisha": "black", "Jamal": "black",
          "Greg": "white", "Luis": "hispanic"}


def ranking_requests(root: Path, n: int = 40, seed: int = 3) -> dict:
    """One JSON file per ranking request: the shown names and their groups as two lists inside
    ``request``, the reply as text in an OpenAI-style ``response``. Returns the hand count of
    top-1 picks per shown group over the parsed requests, plus the statuses expected."""
    rng = random.Random(seed)
    folder = root / "requests"
    folder.mkdir(parents=True)
    shown = {g: 0 for g in set(GROUPS.values())}
    top = dict.fromkeys(shown, 0)
    expected = []  # per file: "ok" | "unparseable" | "refused"
    for i in range(n):
        names = rng.sample(sorted(GROUPS), 4)
        kind = "ok" if i % 10 not in (3, 7) else ("unparseable" if i % 10 == 3 else "refused")
        if kind == "ok":
            pick = rng.choice(names)
            others = [x for x in names if x != pick]
            # the pick comes first in the text, written in a different case; a second name later
            text = f"After review, {pick.upper()} is the strongest fit; {others[0]} is next."
            for name in names:
                shown[GROUPS[name]] += 1
            top[GROUPS[pick]] += 1
        elif kind == "unparseable":
            text = "All candidates seem equally qualified."
        else:
            text = "I'm sorry, but I can't rank people by name."
        expected.append(kind)
        rec = {
            "id": f"req-{i:03d}",
            "request": {"job": "nurse" if i % 2 else "engineer", "names": names,
                        "groups": [GROUPS[x] for x in names]},
            "response": {"model": "gpt-4o-mini" if i % 3 else "llama-3-8b",
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]},
        }
        (folder / f"req_{i:03d}.json").write_text(json.dumps(rec, indent=1))
    return {"shown": shown, "top": top, "expected": expected}


# ------------------------------------------------------------------ multiple-choice JSONL

LETTERS = {"A": "stereotyped", "B": "anti-stereotyped", "C": "unknown"}


def multiple_choice_jsonl(path: Path, n: int = 30, seed: int = 5) -> list[str | None]:
    """gzip JSONL of multiple-choice replies; returns the label each row should get
    (None for replies without an answer letter)."""
    rng = random.Random(seed)
    rows, truth = [], []
    for i in range(n):
        letter = rng.choice("ABC")
        if i % 9 == 4:
            reply, label = "Hmm, hard to say.", None
        else:
            reply, label = f"Let me think. The answer is ({letter}) since ...", LETTERS[letter]
        rows.append(json.dumps({"model": ["m1", "m2"][i % 2], "qid": i, "category": "age",
                                "completion": reply}))
        truth.append(label)
    path.write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()))
    return truth
