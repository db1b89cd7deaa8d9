"""lm-evaluation-harness ``--log_samples`` files: one row per document, the model's
responses kept as lists, the option it picked (``pred``: lm-eval's ``acc`` rule, the highest
log-likelihood; ``pred_norm``: its ``acc_norm`` rule) for multiple-choice tasks, and the model's
name from the matching ``results_*.json``."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import polars as pl

from biasstats.errors import DataError, first_line
from biasstats.ingest import jsontext

__all__ = ["lm_eval_name_from_args", "read_lm_eval_samples"]

from biasstats.ingest.logs import _frame, _scalar, _text

_LM_EVAL_NAME = re.compile(
    r"samples_(?P<task>.+?)_(?P<stamp>\d{4}-\d{2}-\d{2}T[\d\-.:]+)\.jsonl?$"
)
_NAME_KEYS = ("peft", "delta", "pretrained", "model", "path", "engine")


def lm_eval_name_from_args(model_args) -> str | None:
    """The model name lm-eval takes from ``--model_args`` (its own rule: the first of
    peft, delta, pretrained, model, path, engine); None when it had to generate one."""
    if isinstance(model_args, dict):
        for key in _NAME_KEYS:
            if key in model_args:
                return str(model_args[key])
    elif isinstance(model_args, str):
        for key in _NAME_KEYS:
            if f"{key}=" in model_args:
                return model_args.split(f"{key}=")[1].split(",")[0]
    return None


def _lm_eval_results(path: Path, task: str, stamp: str | None) -> tuple[dict | None, str | None]:
    """The ``results_*.json`` of the run that wrote ``path``: the one with the same
    timestamp, else the newest beside it that covers ``task``."""
    def load(res: Path) -> dict:
        """The results file, checked: a file that is there but not what lm-eval writes is
        one line naming it (not a silent 'no results beside it')."""
        try:
            meta = jsontext.loads(res.read_text(encoding="utf-8"), str(res))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DataError(f"{res}: not a readable lm-evaluation-harness results file "
                            f"({first_line(e)})") from None
        if not isinstance(meta, dict):
            raise DataError(f"{res}: not an lm-evaluation-harness results file (expected a "
                            f"JSON object, found {type(meta).__name__})")
        for key in ("config", "configs", "results"):
            if not isinstance(meta.get(key), dict | None):
                raise DataError(f"{res}: '{key}' is not a JSON object (found "
                                f"{type(meta[key]).__name__}; not an lm-evaluation-harness "
                                "results file)")
        configs = meta.get("configs") or {}
        if not isinstance(configs.get(task), dict | None):
            raise DataError(f"{res}: configs.{task} is not a JSON object (found "
                            f"{type(configs[task]).__name__})")
        return meta

    if stamp is not None:
        same = path.parent / f"results_{stamp}.json"
        if same.is_file():
            return load(same), same.name
    for res in sorted(path.parent.glob("results_*.json"), reverse=True):
        if not res.is_file():
            continue
        meta = load(res)
        if task in (meta.get("configs") or meta.get("results") or {}):
            return meta, res.name
    return None, None


def _part(v) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool | int | float) or v is None:
        return str(v)
    return json.dumps(v, sort_keys=True)


def _parts(resp) -> list[str]:
    """One response as the list of its parts, as text."""
    return [_part(x) for x in resp] if isinstance(resp, list | tuple) else [_part(resp)]


def _requests(arguments) -> list[list]:
    """The requests' arguments as lists ``[context, continuation-or-gen_kwargs]``."""
    if isinstance(arguments, dict):
        def index(k: str) -> int:
            m = re.search(r"(\d+)$", k)
            return int(m[1]) if m else 0
        items = [arguments[k] for k in sorted(arguments, key=index)]
    elif isinstance(arguments, list):
        items = arguments
    else:
        return []
    out = []
    for a in items:
        if isinstance(a, dict):
            out.append([a[k] for k in sorted(a, key=lambda k: int(k.rsplit("_", 1)[-1])
                                             if k.rsplit("_", 1)[-1].isdigit() else 0)])
        elif isinstance(a, list):
            out.append(a)
        else:
            out.append([a])
    return out


def _as_float(x) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v


def _argmax(values: list[float]) -> int:
    """numpy's argmax: the first index of the largest value (a NaN counts as largest)."""
    best = 0
    for i, v in enumerate(values):
        if math.isnan(v):
            return i
        if v > values[best]:
            best = i
    return best


def _multiple_choice(line: dict, reqs: list[list], filtered: list, delimiter: str,
                     output_type: str | None) -> dict | None:
    """loglikelihoods, is_greedy, choices, pred, pred_norm of a multiple-choice line."""
    pairs = [r for r in filtered if isinstance(r, list | tuple) and len(r) == 2]
    if output_type not in (None, "multiple_choice") or len(pairs) != len(filtered) or len(pairs) < 2:
        return None
    lls = [_as_float(p[0]) for p in pairs]
    if any(v is None for v in lls):
        return None
    greedy = [str(p[1]).lower() == "true" for p in pairs]
    n = len(lls)
    if "acc_mutual_info" in (line.get("metrics") or []) and n % 2 == 0:
        n //= 2  # the second half: the unconditional log-likelihoods
    out = {"loglikelihoods": lls, "is_greedy": greedy, "pred": _argmax(lls[:n]),
           "choices": None, "pred_norm": None}
    if len(reqs) >= n and all(len(r) >= 2 and isinstance(r[1], str) for r in reqs[:n]):
        conts = [r[1] for r in reqs[:n]]
        choices = [c[len(delimiter):] if delimiter and c.startswith(delimiter) else c for c in conts]
        out["choices"] = choices
        same_context = len({json.dumps(r[0]) for r in reqs[:n]}) == 1
        if same_context and all(len(c) for c in choices):  # a multiple-input task: no length rule
            out["pred_norm"] = _argmax([ll / len(c) for ll, c in zip(lls[:n], choices, strict=True)])
    return out


def read_lm_eval_samples(path: Path, lines: list[dict], notes: list[str] | None = None) -> pl.DataFrame:
    """One row per document of an lm-evaluation-harness ``--log_samples`` file."""
    name = path.name.removesuffix(".gz").removesuffix(".zst")
    m = _LM_EVAL_NAME.search(name)
    task = m["task"] if m else name.split(".")[0].removeprefix("samples_")
    results, res_name = _lm_eval_results(path, task, m["stamp"] if m else None)
    config = (results or {}).get("config") or {}
    model = (results or {}).get("model_name") or lm_eval_name_from_args(config.get("model_args"))
    if notes is not None:
        if results is None:
            notes.append(f"{path.name}: no results_*.json of its run beside it; `model` is null "
                         f"(lm-eval writes the model name there)")
        elif model is None:
            notes.append(f"{path.name}: {res_name} names no model; `model` is null")
        elif lm_eval_name_from_args(config.get("model_args")) is None:
            notes.append(f"{path.name}: lm-eval generated the model name '{model}' (the run's "
                         f"--model_args name no pretrained=, model=, path= or engine=); `model` "
                         f"holds that id, `model_source` the model type "
                         f"'{config.get('model')}'")
    task_config = ((results or {}).get("configs") or {}).get(task) or {}
    delimiter = task_config.get("target_delimiter", " ")
    delimiter = delimiter if isinstance(delimiter, str) else " "
    output_type = task_config.get("output_type")
    records = []
    for n, line in enumerate(lines, start=1):
        if "doc_id" not in line:
            raise DataError(f"{path}: line {n} has no doc_id (not an lm-evaluation-harness sample)")
        metrics = line.get("metrics") or []
        if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
            raise DataError(f"{path}: line {n}: 'metrics' is not a list of metric names (found "
                            f"{json.dumps(line.get('metrics'))[:60]})")
        reqs = _requests(line.get("arguments"))
        filtered = line.get("filtered_resps")
        filtered = filtered if isinstance(filtered, list) else [] if filtered is None else [filtered]
        resps = line.get("resps")
        resps = resps if isinstance(resps, list) else [] if resps is None else [resps]
        rec = {
            "task": task, "model": None if model is None else str(model),
            "model_source": config.get("model"), "doc_id": line["doc_id"], "doc": line.get("doc"),
            "target": _text(_scalar(line.get("target"))),
            "prompt": _text(reqs[0][0]) if reqs and reqs[0] else None,
            "resps": [[_parts(rep) for rep in (req if isinstance(req, list) else [req])]
                      for req in resps],
            "filtered_resps": [_parts(r) for r in filtered],
            "filter": line.get("filter"),
        }
        mc = _multiple_choice(line, reqs, filtered, delimiter, output_type)
        if mc is not None:
            rec.update(mc)
            rec["response"] = mc["choices"][mc["pred"]] if mc["choices"] else None
        else:
            first = filtered[0] if filtered else None
            while isinstance(first, list) and first:
                first = first[0]
            rec["response"] = first if isinstance(first, str) else None
        for metric in metrics:
            rec[metric] = _scalar(line.get(metric))
        records.append(rec)
    return _frame(path, records)
