"""Evaluation logs written by the real tools, in the test run: Inspect AI (a mock model with
fixed replies) and lm-evaluation-harness (its ``dummy`` model, local tasks). The versions are
pinned in the test extras of pyproject.toml: ``test`` (inspect-ai) and ``test-lmeval``
(lm-eval, its own nox session: it installs datasets, scikit-learn and more). A test that needs
a tool that is not installed is skipped with a reason naming the extra.

Nothing here touches the network: sockets are refused while a tool runs, and lm-eval runs
with the Hugging Face libraries offline on local JSON Lines data.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import textwrap
import warnings
import zipfile
from pathlib import Path

INSPECT_PIN = "inspect-ai==0.3.285"
LM_EVAL_PIN = "lm-eval==0.4.13"
NO_INSPECT = "needs inspect-ai (pip install -e '.[test]', which pins " + INSPECT_PIN + ")"
NO_LM_EVAL = "needs lm-eval (pip install -e '.[test-lmeval]', pinned " + LM_EVAL_PIN + "; nox -s logs)"


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@contextlib.contextmanager
def no_network():
    """Any socket connection fails while the tools run (they must not need one)."""
    def refuse(*args, **kwargs):
        raise OSError("network access is off in the tests")

    saved = socket.socket.connect, socket.create_connection
    socket.socket.connect, socket.create_connection = refuse, refuse
    try:
        yield
    finally:
        socket.socket.connect, socket.create_connection = saved


# ====================================================================== Inspect AI

TASK_FILE = '''
"""A multiple-choice task and a mock model with fixed replies (written by tests/ingest/eval_tools.py)."""
import os
import re

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import GenerateConfig, ModelAPI, ModelOutput, ModelUsage, modelapi
from inspect_ai.scorer import Score, choice, mean, scorer
from inspect_ai.solver import multiple_choice, solver

OPTIONS = ["the old man", "the young man", "unknown"]


class FixedReplies(ModelAPI):
    """Replies 'ANSWER: <letter>' with the letter fixed by the question's number."""

    def __init__(self, model_name, base_url=None, api_key=None, config=GenerateConfig(), **kw):
        super().__init__(model_name, base_url, api_key, [], config)

    async def generate(self, input, tools, tool_choice, config):
        text = " ".join(m.text for m in input)
        k = int(re.search(r"Q(\\d+)", text)[1])
        out = ModelOutput.from_content(model=self.model_name,
                                       content=f"Let me think.\\n\\nANSWER: {'ACB'[k % 3]}")
        out.usage = ModelUsage(input_tokens=10 + k, output_tokens=5, total_tokens=15 + k)
        return out


@modelapi(name="bsfixed")
def bsfixed():
    return FixedReplies


@solver
def crash_on_flagged():
    async def solve(state, generate):
        if state.metadata.get("crash") and os.environ.get("BS_CRASH", "1") == "1":
            raise RuntimeError(f"tool crashed on sample {state.sample_id}")
        return state
    return solve


@scorer(metrics={"correct": [mean()], "confident": [mean()]})
def graded():
    async def score(state, target):
        right = state.output.completion.strip().endswith(target.text)
        return Score(value={"correct": int(right), "confident": 0.5},
                     answer=state.output.completion[-1:],
                     explanation=f"graded:  {'right' if right else 'wrong'}\\n(two spaces)")
    return score


@task
def bbq_mc(n: int = 6, crash_every: int = 0, lang: str = "en"):
    samples = [
        Sample(id=i, input=f"Q{i}: Who was late?", choices=OPTIONS, target="ABC"[i % 3],
               metadata={"category": "age" if i % 2 else "gender",
                         "crash": bool(crash_every and i % crash_every == 0)})
        for i in range(1, n + 1)
    ]
    return Task(dataset=MemoryDataset(samples, name="bbq_local", location="memory"),
                solver=[crash_on_flagged(), multiple_choice()], scorer=[choice(), graded()])
'''


@contextlib.contextmanager
def _deflate():
    """Inspect writes its .eval members with deflate, as inspect-ai up to 0.3.214 did (which
    write deflate anyway: nothing to change)."""
    try:
        from inspect_ai._util import zipfile as izf
    except ImportError:
        yield
        return

    saved = dict(izf.zipfile_compress_kwargs)
    izf.zipfile_compress_kwargs.update(compression=zipfile.ZIP_DEFLATED, compresslevel=None)
    try:
        yield
    finally:
        izf.zipfile_compress_kwargs.clear()
        izf.zipfile_compress_kwargs.update(saved)


def inspect_logs(root: Path) -> dict[str, Path]:
    """Logs written by ``inspect_ai.eval`` into ``root/<kind>/``. Kinds: ``zstd`` (the .eval
    format of inspect-ai >= 0.3.215), ``deflate`` (the same with deflate members, as written
    up to 0.3.214), ``json`` (--log-format json), ``errored`` (16 of 80 samples errored),
    ``all_errored`` and ``retry`` (a failed run and its retry by eval_retry, in one folder).
    Returns kind -> log file (``retry``: the folder; ``retry_failed``/``retry_done``: the
    two logs)."""
    from inspect_ai import eval as inspect_eval
    from inspect_ai import eval_retry

    root.mkdir(parents=True, exist_ok=True)
    (root / "bbq_task.py").write_text(TASK_FILE)
    spec = importlib.util.spec_from_file_location("bbq_task", root / "bbq_task.py")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))  # registers the mock model
    task = "bbq_task.py@bbq_mc"
    common = dict(model="bsfixed/model", display="none", log_level="error")
    runs = {
        "zstd": dict(task_args={"n": 5}, epochs=2, log_format="eval"),
        "deflate": dict(task_args={"n": 4, "lang": "de"}, epochs=2, log_format="eval"),
        "json": dict(task_args={"n": 4}, epochs=2, log_format="json"),
        "errored": dict(task_args={"n": 80, "crash_every": 5}, fail_on_error=False,
                        log_format="eval"),
        "all_errored": dict(task_args={"n": 3, "crash_every": 1}, fail_on_error=False,
                            log_format="eval"),
        "retry": dict(task_args={"n": 6, "crash_every": 3}, fail_on_error=True,
                      log_format="eval"),
    }
    out: dict[str, Path] = {}
    cwd = os.getcwd()
    os.chdir(root)  # eval_retry finds the task file by its path relative to where eval ran
    try:
        with no_network(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # inspect's own, not ours
            for kind, args in runs.items():
                folder = root / kind
                with _deflate() if kind == "deflate" else contextlib.nullcontext():
                    logs = inspect_eval(task, log_dir=str(folder), **common, **args)
                out[kind] = Path(logs[0].location)
            os.environ["BS_CRASH"] = "0"
            try:
                retried = eval_retry(str(out["retry"]), log_dir=str(root / "retry"),
                                     display="none", log_level="error")
            finally:
                os.environ.pop("BS_CRASH", None)
    finally:
        os.chdir(cwd)
    out["retry_failed"], out["retry_done"] = out["retry"], Path(retried[0].location)
    out["retry"] = root / "retry"
    return out


# ====================================================================== lm-evaluation-harness

MC_TASK = """
task: bs_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{label}}}}"
metric_list:
  - metric: acc
  - metric: acc_norm
"""

GEN_TASK = """
task: bs_gen
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "Q: {{{{question}}}}\\nA:"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["\\n"]
  do_sample: false
metric_list:
  - metric: exact_match
"""

DRIVER = """
import socket
import sys

def refuse(*args, **kwargs):
    raise OSError("network access is off in the tests")

socket.socket.connect = socket.create_connection = refuse
from lm_eval.__main__ import cli_evaluate
tasks, out = sys.argv[1], sys.argv[2]
for extra in ([], ["--model_args", "pretrained=EleutherAI/pythia-14m"]):
    sys.argv = ["lm_eval", "--model", "dummy", "--tasks", "bs_mc,bs_gen", "--include_path",
                tasks, "--output_path", out, "--log_samples", *extra]
    cli_evaluate()
"""

MC_DOCS = [{"question": f"Who was late in story {i}?", "label": i % 3, "group": "old" if i < 6 else "young",
            "choices": ["the old man", "the young man", "somebody else entirely"]} for i in range(12)]
GEN_DOCS = [{"question": f"Say word {i}", "answer": "lol" if i % 2 == 0 else "no"} for i in range(6)]


def lm_eval_run(root: Path) -> Path:
    """Two runs of ``lm_eval --model dummy --log_samples`` over a local multiple-choice task
    (bs_mc, 12 documents, acc and acc_norm) and a generation task (bs_gen, 6 documents,
    exact_match): one without --model_args (lm-eval generates the model name), one with
    ``pretrained=EleutherAI/pythia-14m`` (the dummy model ignores it). Returns the output
    folder (one subfolder per model name)."""
    import json

    tasks = root / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "mc.jsonl").write_text("".join(json.dumps(d) + "\n" for d in MC_DOCS))
    (tasks / "gen.jsonl").write_text("".join(json.dumps(d) + "\n" for d in GEN_DOCS))
    (tasks / "bs_mc.yaml").write_text(MC_TASK.format(data=tasks / "mc.jsonl"))
    (tasks / "bs_gen.yaml").write_text(GEN_TASK.format(data=tasks / "gen.jsonl"))
    out = root / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(root / "hf"), "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(DRIVER), str(tasks), str(out)],
                          env=env, capture_output=True, text=True, timeout=600, cwd=root)
    if proc.returncode != 0:
        raise RuntimeError(f"lm_eval failed:\n{proc.stderr[-4000:]}")
    return out
