"""Evaluation-log formats read as tables: Inspect AI logs and lm-evaluation-harness
``--log_samples`` files (``[data] format = "inspect_eval"`` / ``"lm_eval_samples"``; ``.eval``
files are recognised by their extension).

**Inspect AI** (``format = "inspect_eval"``): ``.eval`` logs (a zip archive whose members are
deflate- or, since inspect-ai 0.3.215, zstd-compressed) and JSON logs (``--log-format
json``). They are read through ``inspect_ai.log`` when it is installed (``biasstats[inspect]``)
and by the built-in reader (:mod:`biasstats.ingest.ziparchive`) otherwise, giving the same
table. One row per sample and epoch, sorted by sample id, then epoch:

* the run (every row of a log): ``task``, ``task_id``, ``run_id``, ``model``, ``dataset`` (its
  name), ``log_status`` (``success``, ``error``, ``cancelled``, ``started``), and
  ``eval.<field>`` for ``task``, ``task_id``, ``run_id``, ``eval_id``, ``eval_set_id``,
  ``model``, ``created``, ``task_version``, ``dataset.name``, ``dataset.location``,
  ``dataset.samples``, ``tags``, ``task_args.<arg>``, ``metadata.<key>`` and
  ``model_generate_config.<key>`` (e.g. ``eval.task_args.lang``, a column of that name);
* from the sample summaries: ``sample_id`` (text), ``epoch``, ``input`` and ``target`` (text),
  ``choices`` (the options shown, a list), ``score_<scorer>`` (the value; a dict-valued score
  also as ``score_<scorer>.<key>``, a list or dict as JSON text), ``input_tokens``,
  ``output_tokens``, ``total_tokens`` (summed over the models a sample used),
  ``total_time``, ``working_time``, ``started_at``, ``completed_at``, ``limit`` (a limit the
  sample hit), ``retries`` and ``error`` (the error message);
* from the full samples, read only when a spec names one of them (:data:`FULL_ONLY`):
  ``completion`` (also as ``output.completion``), ``answer_<scorer>``, ``explanation_<scorer>`` and
  ``metadata`` (addressable as ``metadata.<key>``). Inspect shortens these in its summaries
  (whitespace collapsed, long text cut), so they are never taken from there.

A sample that errored gets the status ``error`` with its message as the reason (it never
reaches the model). Every scorer the header names has its ``score_<scorer>`` column, even
when every sample errored.

**lm-evaluation-harness** (``format = "lm_eval_samples"``): ``samples_<task>_<timestamp>.jsonl``
(or the older ``.json`` array). One row per line: ``task``, ``doc_id``, ``doc`` (addressable as
``doc.<field>``), ``target`` (text), ``prompt`` (the context of the first request),
``filter``, one column per metric listed in ``metrics`` (e.g. ``acc``), ``resps`` and
``filtered_resps`` (lists: per request, the response as a list of its parts as text:
``[log-likelihood, is_greedy]`` for a log-likelihood request, ``[text]`` for a generation), and
``response`` (a generation's first filtered response; for multiple choice, the option picked).
Multiple-choice tasks add ``choices`` (the options), ``loglikelihoods``, ``is_greedy``,
``pred`` (0-based index of the highest log-likelihood: lm-eval's ``acc`` rule) and
``pred_norm`` (of the highest log-likelihood per character: its ``acc_norm`` rule).
``model`` and ``model_source`` come from the matching ``results_<timestamp>.json`` beside the
file; the ledger notes when it is missing or when lm-eval generated the model name.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from biasstats.errors import DataError, first_line
from biasstats.ingest import jsontext
from biasstats.ingest.schema import LOG_REASON, LOG_STATUS
from biasstats.ingest.ziparchive import Budget, ZipArchive

__all__ = [
    "FULL_ONLY",
    "InspectLog",
    "inspect_backend",
    "read_inspect_log",
    "superseded",
]

# Columns only the full samples hold exactly (a name, or a prefix ending in "_").
FULL_ONLY = ("completion", "output", "metadata", "answer_", "explanation_")
_TRUNCATED = "(content truncated)"  # what Inspect appends to text it cut in a summary
_REASON_CHARS = 200
_FULL_KEYS = {"id", "epoch", "input", "choices", "target", "output", "scores", "metadata",
              "model_usage", "total_time", "working_time", "started_at", "completed_at",
              "error", "limit", "error_retries", "uuid"}


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


def _leaves(prefix: str, obj: dict, out: dict) -> dict:
    """``obj`` flattened to ``prefix<key>[.<key>...]`` columns; a list of scalars stays a
    list when its items share one type, anything else becomes JSON text. A null (a setting
    left unset) makes no column."""
    for k, v in obj.items():
        name = f"{prefix}{k}"
        if v is None:
            continue
        if isinstance(v, dict):
            if v:
                _leaves(f"{name}.", v, out)
        elif isinstance(v, list) and not (
            len({type(x) for x in v}) <= 1 and all(isinstance(x, str | int | float) for x in v)
        ):
            out[name] = json.dumps(v, sort_keys=True)
        else:
            out[name] = v
    return out


def _frame(path: Path, records: list[dict]) -> pl.DataFrame:
    if not records:
        raise DataError(f"{path}: the log holds no samples")
    try:
        return pl.from_dicts(records, infer_schema_length=None)
    except Exception as e:  # polars raises several types for inconsistent records
        raise DataError(f"{path}: log samples do not form a table ({first_line(e)})") from None


# ======================================================================= Inspect AI logs


def inspect_backend() -> str:
    """``"inspect_ai"`` when the ``inspect_ai`` package is installed, else ``"builtin"``."""
    return "inspect_ai" if importlib.util.find_spec("inspect_ai") is not None else "builtin"


@dataclass
class InspectLog:
    """One Inspect log read as a table, with what the source needs to know about its run."""

    frame: pl.DataFrame
    attempt: tuple  # (task_id, task, model, eval_set_id): the attempts of one run share it
    order: tuple  # (created, completed_at): the newest attempt sorts last
    notes: list[str] = field(default_factory=list)


def needs_full(needed: Iterable[str] | None) -> bool:
    """Whether the columns a spec names need the full samples (None: every column)."""
    if needed is None:
        return True
    return any(n == f or (f.endswith("_") and n.startswith(f)) or n.startswith(f + ".")
               for n in needed for f in FULL_ONLY)


class _Shape(ValueError):
    """A field of a log that is not the JSON type Inspect writes (the reader names the file
    and the sample)."""


def _obj(value, what: str, kind: type = dict):
    """``value`` if it is a ``kind`` (dict or list); an empty one for null; else _Shape."""
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise _Shape(f"{what} is not a JSON {'object' if kind is dict else 'list'} (found "
                     f"{type(value).__name__})")
    return value


def _id_key(sample_id) -> tuple:
    return (0, sample_id, "") if isinstance(sample_id, int) else (1, 0, str(sample_id))


def _usage(usage) -> dict:
    out: dict = {"input_tokens": None, "output_tokens": None, "total_tokens": None}
    for model, per_model in _obj(usage, "model_usage").items():
        for key in out:
            v = _obj(per_model, f"model_usage.{model}").get(key)
            if isinstance(v, int | float):
                out[key] = (out[key] or 0) + v
    return out


def _error_text(err) -> str | None:
    if isinstance(err, dict):
        err = err.get("message")
    return None if err is None else str(err)


def _header_columns(header: dict) -> dict:
    ev = header.get("eval") or {}
    ds = _obj(ev.get("dataset"), "eval.dataset")
    cols = {
        "task": ev.get("task"), "task_id": ev.get("task_id"), "run_id": ev.get("run_id"),
        "model": ev.get("model"), "dataset": ds.get("name"), "log_status": header.get("status"),
    }
    for key in ("task", "task_id", "run_id", "eval_id", "eval_set_id", "model", "created",
                "task_version"):
        cols[f"eval.{key}"] = ev.get(key)
    for key in ("name", "location", "samples"):
        cols[f"eval.dataset.{key}"] = ds.get(key)
    cols["eval.tags"] = [str(t) for t in _obj(ev.get("tags"), "eval.tags", list)] or None
    for key in ("task_args", "metadata", "model_generate_config"):
        if isinstance(ev.get(key), dict):
            _leaves(f"eval.{key}.", ev[key], cols)
    return cols


def _scorer_names(header: dict) -> dict[str, list[str]]:
    """Scorer name -> the keys of its dict-valued score ([] for a single value), from the
    header (so an all-errored log still has every score column)."""
    out: dict[str, list[str]] = {}
    for sc in _obj((header.get("eval") or {}).get("scorers"), "eval.scorers", list):
        if isinstance(sc, dict) and sc.get("name"):
            metrics = sc.get("metrics")
            out[str(sc["name"])] = list(metrics) if isinstance(metrics, dict) else []
    if not out:
        for sc in _obj(_obj(header.get("results"), "results").get("scores"),
                       "results.scores", list):
            if isinstance(sc, dict) and sc.get("scorer"):
                out.setdefault(str(sc["scorer"]), [])
    return out


def _record(base: dict, s: dict, full: bool, scorers: dict[str, list[str]]) -> dict:
    """One row from a sample (a summary, or a full sample when ``full``)."""
    rec = dict(base)
    rec.update({
        "sample_id": str(s.get("id")), "epoch": s.get("epoch"),
        "input": _text(s.get("input")), "target": _text(s.get("target")),
        "choices": [str(c) for c in s["choices"]] if isinstance(s.get("choices"), list) else None,
    })
    scores = _obj(s.get("scores"), "scores")
    for name in sorted(set(scorers) | set(scores)):
        score = _obj(scores.get(name), f"scores.{name}")
        value = score.get("value")
        rec[f"score_{name}"] = _scalar(value)
        for key in scorers.get(name, []):
            rec[f"score_{name}.{key}"] = None
        if isinstance(value, dict):
            for key, v in value.items():
                rec[f"score_{name}.{key}"] = _scalar(v)
        if full:
            rec[f"answer_{name}"] = _text(score.get("answer"))
            rec[f"explanation_{name}"] = _text(score.get("explanation"))
    rec.update(_usage(s.get("model_usage")))
    for key in ("total_time", "working_time", "started_at", "completed_at"):
        rec[key] = s.get(key)
    limit = s.get("limit")
    rec["limit"] = limit.get("type") if isinstance(limit, dict) else limit
    retries = s.get("retries", s.get("error_retries"))
    rec["retries"] = len(retries) if isinstance(retries, list) else retries
    err = _error_text(s.get("error"))
    rec["error"] = err
    if full:
        out = _obj(s.get("output"), "output")
        completion = out.get("completion")
        choices = _obj(out.get("choices"), "output.choices", list)
        if not completion and choices:
            completion = _text(_obj(choices[0], "output.choices[0]").get("message"))
        rec["completion"] = rec["output.completion"] = completion  # under Inspect's path too
        rec["metadata"] = s.get("metadata") or None
    rec[LOG_STATUS] = "error" if err is not None else None
    rec[LOG_REASON] = (
        "sample error: " + first_line(Exception(err))[:_REASON_CHARS] if err is not None else None
    )
    return rec


def _truncated(summaries: list[dict], needed) -> bool:
    """A summary whose input or target Inspect cut, when the spec names that field."""
    want = [k for k in ("input", "target") if needed is None or k in needed]
    return any(_TRUNCATED in (_text(s.get(k)) or "") for s in summaries for k in want)


# ------------------------------------------------------------------ the built-in reader


class _BuiltinEval:
    """An ``.eval`` archive read member by member (see :mod:`ziparchive`)."""

    def __init__(self, path: Path, data: bytes, max_bytes: int) -> None:
        self.path = path
        self.zip = ZipArchive(path, data, "Inspect AI .eval log")
        self.budget = Budget(path, max_bytes)
        names = self.zip.names()
        if "header.json" not in names and "_journal/start.json" not in names:
            raise DataError(f"{path}: not an Inspect AI .eval log (no header.json in the archive)")

    def _load(self, name: str, kind: type):
        raw = self.zip.read(name, self.budget)
        where = f"{self.path}: {name} in the archive"
        try:
            obj = jsontext.loads(raw, where)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"{where} is not valid JSON ({first_line(e)})") from None
        if not isinstance(obj, kind):
            want = "an object" if kind is dict else "a list"
            raise DataError(f"{where} is not a JSON {'object' if kind is dict else 'list'} "
                            f"(expected {want}, found {type(obj).__name__})")
        return obj

    def check(self, full: bool) -> None:
        """Decompress and check the members a reader of this log reads (the header, the
        summaries, with ``full`` the samples), within the byte budget; nothing is kept."""
        for name in self.zip.names():
            if (name in ("header.json", "_journal/start.json", "summaries.json")
                    or name.startswith("_journal/summaries/")
                    or (full and name.startswith("samples/"))):
                self.zip.read(name, self.budget)

    def header(self) -> dict:
        names = self.zip.names()
        if "header.json" in names:
            return self._load("header.json", dict)
        start = self._load("_journal/start.json", dict)  # a run that never finished
        return {"status": "started", **start}

    def summaries(self) -> list[dict] | None:
        names = self.zip.names()
        if "summaries.json" in names:
            parts = [self._load("summaries.json", list)]
        else:
            journal = sorted(
                (n for n in names if re.fullmatch(r"_journal/summaries/\d+\.json", n)),
                key=lambda n: int(n.rsplit("/", 1)[1].split(".")[0]),
            )
            if not journal:
                return None
            parts = [self._load(n, list) for n in journal]
        out = []
        for part in parts:
            for s in part:
                if not isinstance(s, dict):
                    raise DataError(f"{self.path}: a sample summary in the archive is not a JSON "
                                    f"object (found {type(s).__name__})")
                out.append(s)
        return out

    def samples(self) -> Iterator[dict]:
        for name in (n for n in self.zip.names() if re.fullmatch(r"samples/[^/]+\.json", n)):
            s = self._load(name, dict)
            yield {k: s[k] for k in _FULL_KEYS if k in s}


def _json_log(path: Path, data: bytes | str) -> dict:
    where = str(path)
    try:
        obj = jsontext.loads(data, where)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({first_line(e)})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("eval"), dict):
        raise DataError(f"{path}: not an Inspect AI log (expected a JSON object with an 'eval' "
                        f"object, as inspect eval --log-format json writes)")
    samples = obj.get("samples") or []
    if not isinstance(samples, list) or not all(isinstance(s, dict) for s in samples):
        raise DataError(f"{path}: the log's samples are not a list of JSON objects")
    return obj


# ------------------------------------------------------------------ through inspect_ai


def _via_inspect_ai(path: Path, full: bool):
    """(header, summaries or None, full samples or None) read by ``inspect_ai.log``."""
    # inspect-ai is optional (biasstats[inspect]) and heavy: imported when a log is read
    from inspect_ai.log import (
        read_eval_log,
        read_eval_log_sample_summaries,
        read_eval_log_samples,
    )

    log = read_eval_log(str(path), header_only=True)
    header = log.model_dump(mode="json", exclude={"samples", "reductions"})
    if full:
        samples = [s.model_dump(mode="json", include=_FULL_KEYS)
                   for s in read_eval_log_samples(str(path), all_samples_required=False)]
        return header, None, samples
    return header, [s.model_dump(mode="json") for s in read_eval_log_sample_summaries(str(path))], None


# ------------------------------------------------------------------ one log


def read_inspect_log(path: Path, data: bytes, max_bytes: int,
                     needed: frozenset[str] | None = None, backend: str | None = None) -> InspectLog:
    """One row per sample and epoch of an Inspect AI log (see the module doc). ``needed``:
    the columns the spec names (None: all); the full samples are read only when one of
    :data:`FULL_ONLY` is among them. ``backend``: ``"inspect_ai"`` or ``"builtin"`` (default:
    :func:`inspect_backend`). A log inspect_ai cannot read is read again by the built-in
    reader for its one-line error (the error path only)."""
    full = needs_full(needed)
    backend = backend or inspect_backend()
    if backend != "inspect_ai" or path.suffix.lower() in (".gz", ".zst"):
        return _assemble(path, *_builtin_read(path, data, max_bytes, full, needed), full)
    if data[:2] == b"PK":  # every member inspect_ai will read is checked first (size, CRC,
        # the max_decompressed_bytes budget): inspect_ai's own zip reader checks neither
        _BuiltinEval(path, data, max_bytes).check(full)
    else:
        jsontext.check_depth(data, str(path))
    try:
        header, summaries, samples = _via_inspect_ai(path, full)
        if summaries is not None and _truncated(summaries, needed):
            header, summaries, samples = _via_inspect_ai(path, True)
    except Exception as e:  # inspect_ai and pydantic raise many types for bad logs
        # the built-in reader raises its own one-line error if it finds one; else its table
        log = _assemble(path, *_builtin_read(path, data, max_bytes, full, needed), full)
        log.notes.append(f"{path.name}: inspect_ai could not read it ({type(e).__name__}: "
                         f"{first_line(e)[:_REASON_CHARS]}); read by the built-in reader")
        return log
    return _assemble(path, header, summaries, samples, full)


def _builtin_read(path: Path, data: bytes, max_bytes: int, full: bool, needed) -> tuple:
    """(header, summaries or None, full samples or None) read by the built-in reader."""
    if data[:2] != b"PK":
        if path.name.lower().removesuffix(".gz").removesuffix(".zst").endswith(".eval"):
            raise DataError(f"{path}: not an Inspect AI .eval log (expected a zip archive)")
        log = _json_log(path, data)
        header = {k: v for k, v in log.items() if k not in ("samples", "reductions")}
        return header, None, [{k: s[k] for k in _FULL_KEYS if k in s}
                              for s in log.get("samples") or []]
    arch = _BuiltinEval(path, data, max_bytes)
    header = arch.header()
    summaries = None if full else arch.summaries()
    if summaries is not None and _truncated(summaries, needed):
        summaries = None
    samples = None if summaries is not None else list(arch.samples())
    return header, summaries, samples


def _assemble(path: Path, header: dict, summaries, samples, full: bool) -> InspectLog:
    if not isinstance(header.get("eval"), dict):
        raise DataError(f"{path}: the log header has no 'eval' object (not an Inspect AI log)")
    rows = summaries if summaries is not None else samples
    use_full = summaries is None and full
    latest: dict[tuple, dict] = {}
    for s in rows:
        epoch = s.get("epoch") or 0
        if not isinstance(epoch, int) or isinstance(s.get("id"), dict | list):
            raise DataError(f"{path}: a sample has id {s.get('id')!r:.40} and epoch "
                            f"{epoch!r:.40} (expected a text or number id and a whole-number "
                            "epoch)")
        latest[(_id_key(s.get("id")), epoch)] = s  # a sample written twice: the last
    try:
        base = _header_columns(header)
        scorers = _scorer_names(header)
    except _Shape as e:
        raise DataError(f"{path}: the log header's {e}") from None
    records = []
    for k in sorted(latest):
        try:
            records.append(_record(base, latest[k], use_full, scorers))
        except (_Shape, AttributeError, TypeError) as e:  # a field of another JSON type
            s = latest[k]
            raise DataError(f"{path}: sample {s.get('id')!r} (epoch {s.get('epoch')}): "
                            f"{first_line(e)}") from None
    ev = header["eval"]
    notes = []
    status = header.get("status")
    if status not in (None, "success"):
        err = _error_text(header.get("error"))
        notes.append(
            f"{path.name}: the run's status is '{status}'"
            + (f" ({first_line(Exception(err))[:_REASON_CHARS]})" if err else "")
            + f"; its {len(records)} logged sample(s) are read"
        )
    if not records:
        raise DataError(f"{path}: the log holds no samples")
    frame = _frame(path, records)
    attempt = (ev.get("task_id") or None, ev.get("task"), ev.get("model"), ev.get("eval_set_id"))
    stats = header.get("stats") if isinstance(header.get("stats"), dict) else {}
    order = (str(ev.get("created") or ""), str(stats.get("completed_at") or ""))
    return InspectLog(frame=frame, attempt=attempt, order=order, notes=notes)


def superseded(attempts: dict[str, tuple[tuple, tuple]]) -> dict[str, str]:
    """Source label -> the label of the log that supersedes it. ``attempts``: per log, its
    :attr:`InspectLog.attempt` and :attr:`InspectLog.order`. Logs of one run (the same
    ``task_id``, task, model and eval set: Inspect keeps the ``task_id`` when it retries a
    run) are attempts of it; the newest (by ``eval.created``, then completion time, then
    label) supersedes the others."""
    runs: dict[tuple, list[str]] = {}
    for label, (attempt, _) in attempts.items():
        if attempt[0]:
            runs.setdefault(attempt, []).append(label)
    out = {}
    for labels in runs.values():
        if len(labels) < 2:
            continue
        ordered = sorted(labels, key=lambda lb: (*attempts[lb][1], lb))
        for lb in ordered[:-1]:
            out[lb] = ordered[-1]
    return out


# ======================================================================= lm-evaluation-harness
