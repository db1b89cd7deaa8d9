"""Evaluation-log formats read as tables: Inspect AI ``.eval`` logs and lm-evaluation-harness
``--log_samples`` JSONL (``[data] format = "inspect_eval"`` / ``"lm_eval_samples"``; ``.eval``
files are recognised by their extension).

* Inspect AI ``.eval``: a zip archive with ``header.json`` (``eval.task``, ``eval.model``,
  ``eval.run_id``, ...) and one ``samples/<id>_epoch_<n>.json`` per sample and epoch. One row per
  sample and epoch: ``task``, ``task_id``, ``run_id``, ``model``, ``sample_id``, ``epoch``,
  ``input`` and ``target`` (text), ``completion`` (the model's reply: ``output.completion``, else
  the text of ``output.choices[0].message.content``), ``score_<scorer>`` (the score value) and
  ``answer_<scorer>`` per scorer, ``metadata`` (the sample's metadata, addressable as
  ``metadata.<key>``) and ``error`` (the sample's error message, if any).
* lm-evaluation-harness samples: ``samples_<task>_<timestamp>.jsonl``, one object per document.
  One row per line: ``task`` (from the file name), ``doc_id``, ``doc`` (the document,
  addressable as ``doc.<field>``), ``target`` and ``response`` (the first filtered response) as
  text, ``filter``, one column per metric listed in ``metrics`` (e.g. ``acc``), and ``model``
  when a ``results_*.json`` beside the file names it (``model_name``).

These readers follow the formats as documented by Inspect AI (``.eval``: zip of JSON,
``header.json`` + ``samples/``) and lm-evaluation-harness (``--log_samples`` output); fields
they do not know are left out rather than guessed.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import polars as pl

from biasstats.errors import DataError, first_line
from biasstats.ingest import jsontext
from biasstats.ingest.guards import too_big


def _text(v) -> str | None:
    """A message content / input / target as plain text (content parts joined)."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, list):
        parts = [_text(x.get("text") if isinstance(x, dict) and "text" in x
                       else x.get("content") if isinstance(x, dict) else x) for x in v]
        return "\n".join(p for p in parts if p)
    if isinstance(v, dict):
        return _text(v.get("content", v.get("text")))
    return str(v)


def _scalar(v):
    return json.dumps(v, sort_keys=True) if isinstance(v, dict | list) else v


def _frame(path: Path, records: list[dict]) -> pl.DataFrame:
    if not records:
        raise DataError(f"{path}: the log holds no samples")
    try:
        return pl.from_dicts(records, infer_schema_length=None)
    except Exception as e:  # polars raises several types for inconsistent records
        raise DataError(f"{path}: log samples do not form a table ({first_line(e)})") from None


def read_inspect_eval(path: Path, data: bytes, max_bytes: int) -> pl.DataFrame:
    """One row per sample and epoch of an Inspect AI ``.eval`` log (see the module doc)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise DataError(f"{path}: not an Inspect AI .eval log (expected a zip archive)") from None
    names = zf.namelist()
    if "header.json" not in names and "_journal/start.json" not in names:
        raise DataError(f"{path}: not an Inspect AI .eval log (no header.json in the archive)")
    if sum(i.file_size for i in zf.infolist()) > max_bytes:
        raise too_big(path, max_bytes)

    def load(name: str) -> dict:
        try:
            return jsontext.loads(zf.read(name), f"{path}: {name} in the archive")
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"{path}: {name} in the archive is not valid JSON ({first_line(e)})") from None

    header = load("header.json") if "header.json" in names else load("_journal/start.json")
    ev = header.get("eval", {})
    samples = sorted(n for n in names if re.fullmatch(r"samples/[^/]+\.json", n))
    records = []
    for name in samples:
        s = load(name)
        out = s.get("output") or {}
        completion = out.get("completion")
        if not completion and out.get("choices"):
            completion = _text((out["choices"][0] or {}).get("message"))
        rec = {
            "task": ev.get("task"), "task_id": ev.get("task_id"), "run_id": ev.get("run_id"),
            "model": ev.get("model"), "sample_id": str(s.get("id")), "epoch": s.get("epoch"),
            "input": _text(s.get("input")), "target": _text(s.get("target")),
            "completion": completion,
        }
        for scorer, score in sorted((s.get("scores") or {}).items()):
            score = score or {}
            rec[f"score_{scorer}"] = _scalar(score.get("value"))
            rec[f"answer_{scorer}"] = _text(score.get("answer"))
        if s.get("metadata"):
            rec["metadata"] = s["metadata"]
        err = s.get("error")
        rec["error"] = err.get("message") if isinstance(err, dict) else err
        records.append(rec)
    return _frame(path, records)


_LM_EVAL_NAME = re.compile(r"samples_(?P<task>.+?)_\d{4}-\d{2}-\d{2}T[\d\-.:]+\.jsonl$")


def _lm_eval_model(path: Path) -> str | None:
    """``model_name`` from a ``results_*.json`` beside a samples file (the newest by name)."""
    for res in sorted(path.parent.glob("results_*.json"), reverse=True):
        try:
            meta = jsontext.loads(res.read_text(encoding="utf-8"), str(res))
        except (OSError, ValueError):
            continue
        name = meta.get("model_name") or (meta.get("config") or {}).get("model_args")
        if name:
            return str(name)
    return None


def read_lm_eval_samples(path: Path, lines: list[dict]) -> pl.DataFrame:
    """One row per document of an lm-evaluation-harness ``--log_samples`` file."""
    m = _LM_EVAL_NAME.search(path.name.removesuffix(".gz").removesuffix(".zst"))
    task = m["task"] if m else path.name.split(".")[0].removeprefix("samples_")
    model = _lm_eval_model(path)
    records = []
    for n, line in enumerate(lines, start=1):
        if "doc_id" not in line:
            raise DataError(f"{path}: line {n} has no doc_id (not an lm-evaluation-harness sample)")
        resp = line.get("filtered_resps")
        while isinstance(resp, list) and resp and isinstance(resp[0], list | str):
            if isinstance(resp[0], str):
                resp = resp[0]
                break
            resp = resp[0]
        rec = {"task": task, "model": model, "doc_id": line["doc_id"], "doc": line.get("doc"),
               "target": _text(_scalar(line.get("target"))),
               "response": resp if isinstance(resp, str) else _scalar(resp),
               "filter": line.get("filter")}
        for metric in line.get("metrics") or []:
            rec[metric] = _scalar(line.get(metric))
        records.append(rec)
    return _frame(path, records)
