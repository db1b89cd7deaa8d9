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


# ------------------------------------------------------------------ evaluation logs


def inspect_eval_log(path: Path, model: str = "openai/gpt-4o", n: int = 6, epochs: int = 2) -> list[dict]:
    """A small Inspect AI ``.eval`` log (zip: header.json, samples/<id>_epoch_<n>.json,
    summaries.json), written from the documented layout. Returns what each row must hold."""
    import zipfile

    header = {"version": 2, "status": "success",
              "eval": {"run_id": "run1", "task": "bbq_ambig", "task_id": "t1", "model": model,
                       "created": "2025-01-01T00:00:00+00:00", "dataset": {"name": "bbq"}},
              "plan": {}, "results": {}, "stats": {}}
    truth = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("header.json", json.dumps(header))
        summaries = []
        for i in range(1, n + 1):
            for epoch in range(1, epochs + 1):
                answer = "ABC"[(i + epoch) % 3]
                sample = {
                    "id": i, "epoch": epoch,
                    "input": [{"role": "user", "content": f"Question {i}?"}],
                    "target": "C",
                    "messages": [],
                    "output": {"model": model, "choices": [{"message": {
                        "role": "assistant",
                        "content": [{"type": "text", "text": f"ANSWER: {answer}"}]},
                        "stop_reason": "stop"}]},
                    "scores": {"choice": {"value": "C" if answer == "C" else "I",
                                          "answer": answer, "explanation": ""}},
                    "metadata": {"category": "age" if i % 2 else "gender"},
                }
                zf.writestr(f"samples/{i}_epoch_{epoch}.json", json.dumps(sample))
                summaries.append({"id": i, "epoch": epoch})
                truth.append({"sample_id": str(i), "epoch": epoch, "answer": answer,
                              "correct": answer == "C", "category": "age" if i % 2 else "gender"})
        zf.writestr("summaries.json", json.dumps(summaries))
    return truth


def lm_eval_samples(folder: Path, task: str = "bbq_lite", n: int = 8) -> list[dict]:
    """An lm-evaluation-harness ``--log_samples`` output: samples_<task>_<timestamp>.jsonl and
    results_<timestamp>.json naming the model. Returns each line's doc_id, acc and response."""
    folder.mkdir(parents=True, exist_ok=True)
    truth, lines = [], []
    for i in range(n):
        reply = ["yes", "no"][i % 2]
        acc = float(i % 3 == 0)
        lines.append({"doc_id": i, "doc": {"question": f"q{i}", "group": "old" if i < n // 2 else "young"},
                      "target": "yes", "arguments": {"gen_args_0": {"arg_0": f"q{i}", "arg_1": {}}},
                      "resps": [[reply]], "filtered_resps": [reply], "filter": "none",
                      "metrics": ["acc"], "acc": acc, "doc_hash": "h", "prompt_hash": "p",
                      "target_hash": "t"})
        truth.append({"doc_id": i, "acc": acc, "response": reply})
    stamp = "2025-01-02T03-04-05.678901"
    (folder / f"samples_{task}_{stamp}.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    (folder / f"results_{stamp}.json").write_text(json.dumps({"model_name": "EleutherAI/pythia-160m",
                                                              "results": {task: {"acc,none": 0.4}}}))
    return truth


# ------------------------------------------------------------------ zip archives, byte by byte


def zip_bytes(members: list[dict]) -> bytes:
    """A zip archive written field by field, so a test can make it lie. Each member: ``name``,
    ``data`` (the uncompressed bytes), ``method`` (0 stored, 8 deflate, 93 zstd; default 93),
    and optionally ``crc`` / ``size`` (the declared CRC-32 and uncompressed size) and
    ``payload`` (the stored bytes, instead of ``data`` compressed)."""
    import struct
    import zlib

    import zstandard

    body, central = b"", b""
    for m in members:
        name, data, method = m["name"].encode(), m["data"], m.get("method", 93)
        if "payload" in m:
            payload = m["payload"]
        elif method == 93:
            payload = zstandard.ZstdCompressor().compress(data)
        elif method == 8:
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            payload = c.compress(data) + c.flush()
        else:
            payload = data
        crc, size = m.get("crc", zlib.crc32(data)), m.get("size", len(data))
        offset = len(body)
        body += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 63, 0x800, method, 0, 0, crc,
                            len(payload), size, len(name), 0) + name + payload
        central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 63, 63, 0x800, method, 0, 0,
                               crc, len(payload), size, len(name), 0, 0, 0, 0, 0, offset) + name
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members), len(members),
                      len(central), len(body), 0)
    return body + central + end


def eval_log_members(n: int = 2, header: object = None) -> list[dict]:
    """The members of a small valid Inspect .eval log (zstd), for the bad-input tests to spoil."""
    header = header if header is not None else {
        "version": 2, "status": "success",
        "eval": {"task": "t", "task_id": "t1", "run_id": "r1", "model": "m", "config": {},
                 "created": "2025-01-01T00:00:00+00:00",
                 "dataset": {"name": "d"}, "scorers": [{"name": "match", "metrics": []}]},
    }
    members = [{"name": "header.json", "data": json.dumps(header).encode()}]
    summaries = []
    for i in range(1, n + 1):
        sample = {"id": i, "epoch": 1, "input": f"q{i}", "target": "A",
                  "output": {"completion": "A"}, "scores": {"match": {"value": "C", "answer": "A"}}}
        members.append({"name": f"samples/{i}_epoch_1.json", "data": json.dumps(sample).encode()})
        summaries.append({k: sample[k] for k in ("id", "epoch", "input", "target", "scores")})
    members.append({"name": "summaries.json", "data": json.dumps(summaries).encode()})
    return members
