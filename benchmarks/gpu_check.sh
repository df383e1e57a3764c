#!/usr/bin/env bash
# One prepared GPU check for resistkit on a lent accelerator machine (one H100 / H200).
#
# What it checks, in one process, writing figures to $OUT (gpu_check.json + gpu_check.log):
#   1. preflight   versions, GPU, imports of trl/datasets/resistkit from the carried wheels
#   2. sft         a ~0.5B Llama built from a config (no hub; shipped tokenizer) fine-tuned in
#                  bf16 by `resistkit.training.train` for 40 steps with 2 slices: tokens/s, peak memory,
#                  loss going down
#   3. slices      each slice reloads with from_pretrained, complete and finite; the last slice
#                  equals final/
#   4. generate    batched, seeded HF generation from a slice on the GPU: tokens/s
#   5. score       the sentiment-classifier scorer with a classifier built from a config, on GPU
#   6. launch      `resistkit train --accelerate-config ddp --num-processes 1` on the tiny recipe
#                  (accelerate's launcher on a GPU machine), skipped if time is short
# Budget: under 6 minutes in all (measured steps stop early rather than overrun).
#
# The machine has torch, transformers (too old for resistkit), peft, accelerate, pandas,
# pyarrow, typer, rich, but no trl, datasets, pydantic and no registry. Prepare the wheels here,
# in the repository root, on a machine with PyPI (about 19 MB, Python 3.12, pure Python except
# pydantic-core):
#
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#       --platform manylinux2014_x86_64 -d .whl \
#       trl==1.16.0 datasets==5.2.0 transformers==5.24.0 peft==0.21.2 dill==0.4.1 \
#       multiprocess==0.70.19 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 \
#       typing-inspection==0.4.5 typing-extensions==4.16.0
#
# Run it there (device tool): command "bash benchmarks/gpu_check.sh", carry [".whl"],
# timeout_s 480. Dry run of everything but the GPU, here on CPU with a tiny model:
#
#   GPU_CHECK_SIZE=tiny GPU_CHECK_NO_WHEELS=1 OUT=/tmp/gpu_check PYTHON=.venv/bin/python \
#       bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-${TMPDIR:-/tmp}/gpu_check_out}
PY=${PYTHON:-python3}
export OUT GPU_CHECK_SIZE=${GPU_CHECK_SIZE:-0.5b}
export GPU_CHECK_WORK=${GPU_CHECK_WORK:-/tmp/resistkit-gpu-check}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
mkdir -p "$OUT"
rm -rf "$GPU_CHECK_WORK"
T0=$(date +%s)

if [ -z "${GPU_CHECK_NO_WHEELS:-}" ] && compgen -G ".whl/*.whl" > /dev/null; then
    # --target keeps the machine's own packages untouched; PYTHONPATH puts the carried ones
    # (transformers 5.24 over the image's older one) first.
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
# resistkit from the working tree, without installing it.
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
export GPU_CHECK_INSTALL_S=$(( $(date +%s) - T0 ))

set -o pipefail
"$PY" - <<'PYEOF' 2>&1 | tee "$OUT/gpu_check.log"
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

OUT = Path(os.environ["OUT"])
WORK = Path(os.environ["GPU_CHECK_WORK"])
SIZE = os.environ["GPU_CHECK_SIZE"]
BUDGET_S = 330  # this Python part; wheels and start-up come on top, 6 min in all
START = time.time()
report: dict = {"size": SIZE, "install_s": int(os.environ.get("GPU_CHECK_INSTALL_S", 0)),
                "steps": {}}

# Model and workload per size: "0.5b" on the GPU, "tiny" for a CPU dry run of the script.
SIZES = {
    "0.5b": dict(
        tiny={"hidden_size": 1280, "num_hidden_layers": 24, "num_attention_heads": 20,
              "num_key_value_heads": 4, "intermediate_size": 4352,
              "max_position_embeddings": 512, "tie_word_embeddings": True},
        batch=32, steps=40, lr=3.0e-4, max_length=128,
        gen_prompts=512, gen_batch=128, gen_tokens=48,
        clf={"hidden_size": 512, "num_hidden_layers": 6, "num_attention_heads": 8,
             "intermediate_size": 1536},
    ),
    "tiny": dict(
        tiny={"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
              "intermediate_size": 192},
        batch=8, steps=8, lr=1.0e-3, max_length=64, gen_prompts=16, gen_batch=8, gen_tokens=8,
        clf={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
             "intermediate_size": 64},
    ),
}
cfg = SIZES[SIZE]


def save() -> None:
    report["elapsed_s"] = round(time.time() - START, 1)
    (OUT / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str) + "\n")


def step(name: str):
    """Decorator that RUNS the function at once, as a named step: records its seconds and
    figures, or its error (a failed step is a finding; later steps check `ok(...)`)."""

    def wrap(fn):
        t = time.time()
        print(f"== {name}", flush=True)
        try:
            figures = fn() or {}
            report["steps"][name] = {"ok": True, "seconds": round(time.time() - t, 2),
                                     **figures}
        except Exception as err:  # a failed step is a finding: record it, go on if possible
            report["steps"][name] = {"ok": False, "seconds": round(time.time() - t, 2),
                                     "error": f"{type(err).__name__}: {err}",
                                     "traceback": traceback.format_exc()[-3000:]}
            print(traceback.format_exc(), flush=True)
        print(json.dumps({name: {k: v for k, v in report["steps"][name].items()
                                 if k != "traceback"}}, default=str), flush=True)
        save()
        return report["steps"][name]["ok"]

    return wrap


def ok(name: str) -> bool:
    return report["steps"].get(name, {}).get("ok", False)


@step("preflight")
def preflight() -> dict:
    import torch

    import accelerate
    import datasets
    import peft
    import pydantic
    import transformers
    import trl

    import resistkit
    from resistkit.runinfo import environment

    env = environment()
    figures = {
        "python": sys.version.split()[0],
        "torch": torch.__version__, "cuda": torch.version.cuda,
        "transformers": transformers.__version__, "trl": trl.__version__,
        "datasets": datasets.__version__, "peft": peft.__version__,
        "accelerate": accelerate.__version__, "pydantic": pydantic.__version__,
        "resistkit": resistkit.__version__, "device": env.get("device"),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        figures.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                       bf16=torch.cuda.is_bf16_supported())
    elif SIZE != "tiny":
        raise RuntimeError("no CUDA device visible")
    return figures


def peak_gib() -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    return round(torch.cuda.max_memory_allocated() / 2**30, 2)


RUN = WORK / "sft"
SLICES = [cfg["batch"] * cfg["steps"] // 2, cfg["batch"] * cfg["steps"]]


@step("sft")
def sft() -> dict:
    import torch

    from resistkit.recipes import validate_recipe
    from resistkit.training.train import read_losses, train

    raw = {
        "seed": 42, "output_dir": str(RUN), "method": "sft",
        "model": {"name_or_path": "tiny", "tiny": cfg["tiny"]},
        "prompt_format": "continuation",
        "data": {"dataset": "builtin:reviews/positive", "split": "train"},
        "save_at_samples": SLICES,
        "train": {
            "learning_rate": cfg["lr"], "lr_scheduler_type": "constant",
            "per_device_train_batch_size": cfg["batch"], "max_length": cfg["max_length"],
            "logging_steps": 1, "save_strategy": "no",  # 0.5B + Adam = 6 GB per checkpoint
            "activation_checkpointing": False, "report_to": "none",
        },
    }
    if torch.cuda.is_available():
        raw["train"]["bf16"] = True
        torch.cuda.reset_peak_memory_stats()
    recipe = validate_recipe(raw, "gpu_check")
    t = time.time()
    result = train(recipe, progress=False)
    seconds = time.time() - t
    rows = [json.loads(line) for line in (RUN / "train_log.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "loss" in r]
    losses = read_losses(RUN)
    # Tokens/s over steps 2..n: the first step holds CUDA/cuBLAS warm-up.
    tok_s = None
    if len(rows) > 2 and rows[-1]["elapsed_s"] > rows[0]["elapsed_s"]:
        tok_s = (rows[-1]["num_tokens"] - rows[0]["num_tokens"]) / (
            rows[-1]["elapsed_s"] - rows[0]["elapsed_s"])
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    if not all(x == x for x in losses) or last >= first:
        raise RuntimeError(f"loss did not go down: {first:.4f} -> {last:.4f}")
    manifest = json.loads((RUN / "train_manifest.json").read_text())
    return {"steps": len(losses),
            "train_seconds": round(seconds, 1), "tokens_per_s": tok_s and round(tok_s),
            "loss_first3": round(first, 4), "loss_last3": round(last, 4),
            "peak_gpu_gib": peak_gib(), "distributed_type": manifest.get("distributed_type"),
            "train_runtime_s": result.metrics.get("train_runtime")}


@step("slices")
def slices() -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    from resistkit.training.layout import slice_dir

    if not ok("sft"):
        raise RuntimeError("sft failed")
    out = {}
    states = {}
    for n in SLICES:
        path = slice_dir(RUN, n)
        meta = json.loads((path / "slice.json").read_text())
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        sd = model.state_dict()
        bad = [k for k, v in sd.items() if v.numel() == 0 or not torch.isfinite(v).all()]
        if bad:
            raise RuntimeError(f"slice {n}: empty or non-finite tensors {bad[:3]}")
        states[n] = sd
        out[f"slice_{n}"] = {"samples_seen": meta["samples_seen"], "tensors": len(sd)}
    final_model = AutoModelForCausalLM.from_pretrained(RUN / "final", dtype=torch.float32)
    out["parameters_m"] = round(sum(p.numel() for p in final_model.parameters()) / 1e6, 1)
    final = final_model.state_dict()
    last = states[SLICES[-1]]
    out["last_slice_equals_final"] = all(torch.equal(final[k], last[k]) for k in final)
    out["slices_differ"] = any(not torch.equal(states[SLICES[0]][k], last[k]) for k in last)
    if not (out["last_slice_equals_final"] and out["slices_differ"]):
        raise RuntimeError(f"unexpected slice contents: {out}")
    return out


GENERATIONS = WORK / "generations.jsonl"


@step("generate")
def generate() -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from resistkit.data import load_data
    from resistkit.generation.common import DecodingParams
    from resistkit.generation.hf import generate_to_file
    from resistkit.training.layout import slice_dir

    if not ok("sft"):
        raise RuntimeError("sft failed")
    path = slice_dir(RUN, SLICES[-1])
    cuda = torch.cuda.is_available()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=torch.bfloat16 if cuda else torch.float32)
    if cuda:
        model = model.to("cuda")
        torch.cuda.reset_peak_memory_stats()
    prompts = list(load_data("builtin:reviews/all", split="heldout",
                             num_samples=min(600, cfg["gen_prompts"]), seed=0)["prompt"])
    prompts = (prompts * (cfg["gen_prompts"] // len(prompts) + 1))[: cfg["gen_prompts"]]
    params = DecodingParams(max_new_tokens=cfg["gen_tokens"], seed=42)
    t = time.time()
    generate_to_file(model, tok, prompts, GENERATIONS, params, record_model=str(path),
                     batch_size=cfg["gen_batch"], progress=False)
    seconds = time.time() - t
    rows = [json.loads(line) for line in GENERATIONS.read_text().splitlines()]
    new_tokens = sum(len(tok(r["response"], add_special_tokens=False)["input_ids"])
                     for r in rows)
    return {"prompts": len(prompts), "batch": cfg["gen_batch"], "gen_seconds": round(seconds, 2),
            "new_tokens": new_tokens, "tokens_per_s": round(new_tokens / seconds),
            "empty": sum(1 for r in rows if not r["response"].strip()),
            "peak_gpu_gib": peak_gib(), "example": rows[0]["response"][:80]}


@step("score")
def score() -> dict:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    from resistkit.models import clear_model_cache, resolve_device
    from resistkit.scoring.stage import run_score

    if not ok("generate"):
        raise RuntimeError("generate failed")
    tok = AutoTokenizer.from_pretrained(RUN / "final")
    # A randomly initialised classifier: this checks the GPU path and speed, not judgement.
    torch.manual_seed(0)
    clf = LlamaForSequenceClassification(LlamaConfig(
        vocab_size=len(tok), num_labels=2, id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1}, pad_token_id=tok.pad_token_id,
        max_position_embeddings=512, **cfg["clf"]))
    path = WORK / "classifier"
    clf.save_pretrained(path)
    tok.save_pretrained(path)
    t = time.time()
    result = run_score(GENERATIONS, ["sentiment-classifier"], classifier=str(path),
                       output=WORK / "scores.jsonl", summary_output=WORK / "summary.json")
    seconds = time.time() - t
    col = result.summary["columns"]["sentiment_classifier"]
    clear_model_cache()
    return {"device": str(resolve_device("auto")), "rows": col.get("n"),
            "mean": col.get("mean"), "score_seconds": round(seconds, 2),
            "rows_per_s": round(col.get("n", 0) / seconds, 1)}


@step("launch")
def launch() -> dict:
    if time.time() - START > BUDGET_S - 90:
        raise RuntimeError("skipped: not enough of the time budget left")
    cmd = [sys.executable, "-m", "resistkit", "train", "recipes/tiny/sft.yaml",
           "-o", str(WORK / "launch"), "--accelerate-config", "ddp", "--num-processes", "1",
           "--set", "save_at_samples=[32, 64]"]
    t = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=150)
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode}: {proc.stderr[-1500:]}")
    manifest = json.loads((WORK / "launch" / "train_manifest.json").read_text())
    return {"launch_seconds": round(time.time() - t, 1),
            "distributed_type": manifest.get("distributed_type"),
            "num_processes": manifest.get("num_processes")}


save()
failed = [name for name, s in report["steps"].items() if not s["ok"]]
print(f"gpu_check: {len(report['steps']) - len(failed)} passed, {len(failed)} failed"
      f" in {report['elapsed_s']} s; figures in {OUT / 'gpu_check.json'}")
sys.exit(1 if failed else 0)
PYEOF
echo "gpu_check.sh total: $(( $(date +%s) - T0 )) s"
