"""`resistkit pretrain`: a byte-level BPE tokenizer and a Llama-style causal LM from scratch.

One run yields the pre-training-volume checkpoints of the paper's Setting III: complete model
directories (config + tokenizer + safetensors) saved when the tokens seen pass each value of
``save_at_tokens``, each with its held-out loss, so elasticity can be compared across
pre-training volume without a hub.

Reading order: ``pretrain()`` → ``prepare_tokenizer()`` → ``build_tiny_model`` →
``build_trainer_config()`` → TRL ``SFTTrainer`` on plain text with ``packing_strategy="wrapped"``
→ ``trainer.train(resume_from_checkpoint=...)``. Why TRL's SFTTrainer rather than a hand-written
loop or transformers' ``Trainer`` with our own packing: a text-only dataset *is* causal-LM
pre-training for SFTTrainer (labels = inputs, an EOS appended to every document, documents
concatenated and cut into ``max_length`` blocks), it is the trainer every other stage uses, and
its options pass through unchanged. "wrapped" packing (GPT-style: cross-document attention, no
padding) makes every step see exactly ``batch x max_length`` tokens, so a token budget maps onto
``max_steps`` and the learning-rate schedule; best-fit packing would need FlashAttention for
document masking and gives a variable number of tokens per step.

The run directory::

    RUN/tokenizer/                      tokenizer used by every checkpoint
    RUN/tokens/tokens-000001000000/     complete model, saved once 1M tokens were seen
    RUN/final/                          complete model after `max_tokens`
    RUN/checkpoints/checkpoint-N/       Trainer checkpoints (optimizer, RNG) for resumption
    RUN/pretrain_manifest.json          params, unigram baseline, per-checkpoint held-out bits
    RUN/pretrain_log.jsonl              training log lines and checkpoint records
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from resistkit.recipes import (
    RecipeError,
    TinyModelConfig,
    dump_recipe,
    load_recipe,
    validate_trainer_fields,
)
from resistkit.runinfo import (
    atomic_write_json,
    atomic_write_text,
    environment,
    truncate_jsonl_log,
)

if TYPE_CHECKING:
    import torch
    from datasets import Dataset
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

TOKENIZER_DIR = "tokenizer"
TOKENS_DIR = "tokens"
FINAL_DIR = "final"
CHECKPOINTS_DIR = "checkpoints"
MANIFEST = "pretrain_manifest.json"
LOG_FILE = "pretrain_log.jsonl"
CHECKPOINT_INFO = "pretrain_checkpoint.json"

# Keys resistkit pretrain sets itself from the recipe; a recipe that set them in `train:`
# would silently change the token accounting.
RESERVED_TRAIN_KEYS = {
    "output_dir": "set by resistkit; use the top-level `output_dir`",
    "max_steps": "derived from `max_tokens`",
    "num_train_epochs": "derived from `max_tokens` (the data repeats as needed)",
    "packing": "always on for pre-training",
    "packing_strategy": "'wrapped' so every step sees batch x max_length tokens",
    "dataset_text_field": "set from `data.text_column`",
    "include_num_input_tokens_seen": "always 'non_padding': tokens seen drive `save_at_tokens`",
}


def tokens_dir(run_dir: str | Path, tokens: int) -> Path:
    return Path(run_dir) / TOKENS_DIR / f"tokens-{tokens:012d}"


# --------------------------------------------------------------------------------------------
# Recipe


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class PretrainDataSpec(_Strict):
    dataset: str = Field("builtin:pretrain", description="Any text data set spec (load_data).")
    split: str = Field("train", description="Split trained on.")
    heldout_split: str | None = Field(
        "heldout", description="Split for held-out loss; never trained on. null: no evaluation."
    )
    text_column: str = Field("text", description="Column holding the documents.")
    num_samples: int | None = Field(None, ge=1, description="Train on the first n documents.")
    data_files: str | None = Field(None, description="Local files for an hf: adapter.")


class TokenizerSpec(_Strict):
    source: str = Field(
        "train",
        description="'train': byte-level BPE on the training split; 'default': the shipped "
        "tokenizer; otherwise a tokenizer directory.",
    )
    vocab_size: int = Field(4096, ge=263, description="Vocabulary size when source='train'.")
    max_documents: int | None = Field(
        None, ge=1, description="Train the tokenizer on the first n training documents only."
    )


class PretrainRecipe(_Strict):
    """A from-scratch pre-training run. `train:` holds TRL SFTConfig fields by their names."""

    seed: int = Field(42, description="Seed for data order, tokenizer data and initialisation.")
    output_dir: str = Field("runs/pretrain", description="Run directory.")
    data: PretrainDataSpec = Field(default_factory=PretrainDataSpec)
    tokenizer: TokenizerSpec = Field(default_factory=TokenizerSpec)
    model: TinyModelConfig = Field(default_factory=TinyModelConfig)
    max_tokens: int = Field(ge=1, description="Token budget; sets max_steps and the LR schedule.")
    save_at_tokens: list[int] = Field(
        default_factory=list, description="Save complete models once this many tokens are seen."
    )
    heldout_max_tokens: int | None = Field(
        65536, ge=2, description="Evaluate at most this many held-out tokens (null: all)."
    )
    eval_batch_size: int = Field(16, ge=1, description="Blocks per held-out forward pass.")
    save_dtype: Literal["float32", "float16", "bfloat16"] = Field(
        "float32", description="Dtype of the saved complete models (Trainer checkpoints: fp32)."
    )
    train: dict[str, Any] = Field(default_factory=dict, description="trl.SFTConfig fields.")


def validate_pretrain_recipe(recipe: PretrainRecipe, source: str) -> PretrainRecipe:
    """Checks that need more than one field (pydantic already checked names and types)."""
    for key in recipe.train:
        if key in RESERVED_TRAIN_KEYS:
            raise RecipeError(source, f"train.{key}", RESERVED_TRAIN_KEYS[key])
    recipe.train = validate_trainer_fields(recipe.train, "sft", source)
    saves = recipe.save_at_tokens
    if sorted(set(saves)) != saves or any(n <= 0 for n in saves):
        raise RecipeError(source, "save_at_tokens", "must be positive and strictly increasing")
    if saves and saves[-1] > recipe.max_tokens:
        raise RecipeError(
            source, "save_at_tokens", f"{saves[-1]} exceeds max_tokens={recipe.max_tokens}"
        )
    if recipe.data.heldout_split is not None and recipe.data.heldout_split == recipe.data.split:
        raise RecipeError(source, "data.heldout_split", "must differ from data.split")
    max_length = recipe.train.get("max_length", PRETRAIN_DEFAULTS["max_length"])
    if max_length is None or max_length > recipe.model.max_position_embeddings:
        raise RecipeError(
            source, "train.max_length",
            f"must be set and <= model.max_position_embeddings "
            f"({recipe.model.max_position_embeddings}), got {max_length}",
        )
    return recipe


def load_pretrain_recipe(path: str | Path, overrides: Sequence[str] = ()) -> PretrainRecipe:
    recipe = load_recipe(path, overrides, model=PretrainRecipe)
    return validate_pretrain_recipe(recipe, str(path))


# --------------------------------------------------------------------------------------------
# Trainer configuration

# Pre-training defaults for tiny models (a recipe's `train:` wins). Learning rates that suit
# fine-tuning (TRL's 2e-5) leave a from-scratch model at the unigram level.
PRETRAIN_DEFAULTS: dict[str, Any] = {
    "per_device_train_batch_size": 16,
    "max_length": 128,
    "learning_rate": 3e-3,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 0.05,  # a float < 1 is a fraction of max_steps
    "weight_decay": 0.1,
    "adam_beta2": 0.95,
    "max_grad_norm": 1.0,
    "logging_steps": 10,
    "shuffle_dataset": True,  # shuffle documents before packing: seeded, mixes sources
    "dataloader_drop_last": False,
}


def build_trainer_config(recipe: PretrainRecipe, run_dir: Path) -> Any:
    from trl import SFTConfig

    from resistkit.train import device_defaults

    values = device_defaults("sft")
    values.update(PRETRAIN_DEFAULTS)
    values.update(seed=recipe.seed, data_seed=recipe.seed)
    values.update(recipe.train)
    per_step = tokens_per_step_of(values)
    max_steps = max(1, math.ceil(recipe.max_tokens / per_step))
    if "save_steps" not in recipe.train:
        # About ten resumable checkpoints per run bound the work an interruption can lose.
        values["save_steps"] = max(1, max_steps // 10)
    values.update(
        output_dir=str(run_dir / CHECKPOINTS_DIR),
        max_steps=max_steps,
        packing=True,
        packing_strategy="wrapped",
        dataset_text_field=recipe.data.text_column,
        include_num_input_tokens_seen="non_padding",
    )
    return SFTConfig(**values)


def tokens_per_step_of(values: dict[str, Any], world: int | None = None) -> int:
    """Tokens per optimizer step with wrapped packing: every row is `max_length` long."""
    if world is None:  # before TrainingArguments exist: the launcher's environment
        world = int(os.environ.get("WORLD_SIZE", "1"))
    return (
        int(values.get("per_device_train_batch_size", 8))
        * int(values.get("gradient_accumulation_steps", 1))
        * int(values["max_length"])
        * world
    )


# --------------------------------------------------------------------------------------------
# Data, tokenizer, held-out evaluation


def load_texts(recipe: PretrainRecipe, split: str, *, shuffle: bool) -> Dataset:
    from resistkit.data import load_data

    spec = recipe.data
    ds = load_data(
        spec.dataset,
        split=split,
        num_samples=spec.num_samples if split == spec.split else None,
        seed=recipe.seed,
        data_files=spec.data_files,
        shuffle=shuffle,
    )
    if spec.text_column not in ds.column_names:
        raise ValueError(
            f"dataset {spec.dataset!r} (split {split!r}) has no column {spec.text_column!r}; "
            f"columns: {', '.join(ds.column_names)}"
        )
    return ds.select_columns([spec.text_column])


def prepare_tokenizer(recipe: PretrainRecipe, run_dir: Path, train: Dataset) -> dict[str, Any]:
    """Create RUN/tokenizer once (a resumed run reuses it, so token ids never change)."""
    out = run_dir / TOKENIZER_DIR
    spec = recipe.tokenizer
    info: dict[str, Any] = {"source": spec.source, "dir": str(out)}
    if (out / "tokenizer_config.json").exists():
        return info
    tmp = out.with_name(TOKENIZER_DIR + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    start = time.perf_counter()
    if spec.source == "train":
        from resistkit.tokenizer import train_bpe_tokenizer

        texts = train[recipe.data.text_column]
        if spec.max_documents is not None:
            texts = texts[: spec.max_documents]
        train_bpe_tokenizer(texts, spec.vocab_size, tmp)
    elif spec.source == "default":
        from resistkit.tokenizer import default_tokenizer

        default_tokenizer().save_pretrained(str(tmp))
    else:
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(spec.source).save_pretrained(str(tmp))
    info["build_s"] = round(time.perf_counter() - start, 2)
    os.replace(tmp, out)
    return info


def load_run_tokenizer(run_dir: Path) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(run_dir / TOKENIZER_DIR))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    return tok


def heldout_blocks(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], block: int, max_tokens: int | None
) -> torch.Tensor:
    """Held-out documents laid out exactly as training sees them: text + EOS, concatenated,
    cut into `block`-token rows (the remainder shorter than a block is dropped)."""
    import torch

    eos = tokenizer.eos_token_id
    ids: list[int] = []
    for enc in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        ids.extend(enc)
        if eos is not None:
            ids.append(eos)
        if max_tokens is not None and len(ids) >= max_tokens:
            break
    if max_tokens is not None:
        ids = ids[:max_tokens]
    rows = len(ids) // block
    if rows == 0:  # less than one block of held-out text: one short row
        return torch.tensor([ids], dtype=torch.long)
    return torch.tensor(ids[: rows * block], dtype=torch.long).view(rows, block)


def bits_per_token(model: Any, blocks: torch.Tensor, batch_size: int = 16) -> float:
    """Mean next-token cross-entropy in bits over every position but each row's first."""
    import torch
    import torch.nn.functional as F

    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            for i in range(0, len(blocks), batch_size):
                x = blocks[i : i + batch_size].to(device)
                logits = model(input_ids=x, use_cache=False).logits[:, :-1].float()
                target = x[:, 1:]
                total += F.cross_entropy(
                    logits.reshape(-1, logits.size(-1)), target.reshape(-1), reduction="sum"
                ).item()
                count += target.numel()
    finally:
        model.train(was_training)
    return total / max(count, 1) / math.log(2)


def unigram_bits_per_token(train_ids: Any, blocks: torch.Tensor, vocab_size: int) -> float:
    """Bits/token on the held-out positions of a unigram model of the training tokens
    (add-one smoothing): the floor a language model must beat to have learnt any context."""
    import numpy as np

    counts = np.bincount(np.asarray(train_ids, dtype=np.int64), minlength=vocab_size)
    logp = np.log2((counts + 1.0) / (counts.sum() + len(counts)))
    targets = blocks[:, 1:].reshape(-1).numpy()
    return float(-logp[targets].mean())


def packed_token_ids(dataset: Dataset) -> Any:
    """All token ids of a packed (tokenized) dataset, as one flat array, without Python lists."""
    column = dataset.data.column("input_ids").combine_chunks()
    return column.flatten().to_numpy()


# --------------------------------------------------------------------------------------------
# Callbacks


@dataclass
class PretrainState:
    """What the callback and the final save share."""

    run_dir: Path
    tokenizer: Any
    blocks: Any
    eval_batch_size: int
    save_dtype: str
    unigram_bits: float | None
    trainer: Any = None
    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    start: float = 0.0
    overhead_s: float = 0.0  # time spent evaluating and saving, not training
    session_tokens0: int = 0


def _dtype(name: str) -> Any:
    import torch

    return getattr(torch, name)


def save_complete_model(state: PretrainState, target: Path, info: dict[str, Any]) -> None:
    """Save model + tokenizer + record to `target` atomically (temp dir, then rename)."""
    trainer = state.trainer
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model = trainer.model
    if state.save_dtype != "float32":
        import copy

        model = copy.deepcopy(model).to(_dtype(state.save_dtype))
    model.save_pretrained(str(tmp))
    config_path = tmp / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    # The trainer turns the KV cache off while training; a saved model is for generation.
    config["use_cache"] = True
    # Weights may be stored in half precision to save space, but `dtype="auto"` (the
    # transformers default) should still load float32: half-precision matmuls run ~50x slower
    # on CPUs. The config's dtype is what "auto" reads.
    config["dtype"] = "float32"
    atomic_write_json(config_path, config)
    state.tokenizer.save_pretrained(str(tmp))
    # The record travels with the model (copied or shipped elsewhere), so no path in it.
    record = {k: v for k, v in info.items() if k != "dir"}
    atomic_write_json(tmp / CHECKPOINT_INFO, record)
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, target)


def evaluate_now(state: PretrainState, tokens_seen: int, step: int) -> dict[str, Any]:
    """Held-out bits of the weights as they will be saved (rounded to `save_dtype`)."""
    model = state.trainer.model
    train_s = time.perf_counter() - state.start - state.overhead_s
    new_tokens = tokens_seen - state.session_tokens0
    row: dict[str, Any] = {
        "tokens_seen": tokens_seen,
        "step": step,
        "train_s_this_session": round(train_s, 2),
        "tokens_per_s": round(new_tokens / train_s, 1) if train_s > 0 else None,
        "weights_dtype": state.save_dtype,
    }
    if state.blocks is not None:
        bits = bits_per_token(model, state.blocks, state.eval_batch_size)
        row["heldout_bits_per_token_fp32"] = round(bits, 5)
        if state.save_dtype != "float32":
            import copy

            rounded = copy.deepcopy(model).to(_dtype(state.save_dtype)).float()
            bits = bits_per_token(rounded, state.blocks, state.eval_batch_size)
        row["heldout_bits_per_token"] = round(bits, 5)
        row["heldout_tokens"] = int(state.blocks[:, 1:].numel())
        row["unigram_bits_per_token"] = state.unigram_bits
    return row


def _append_log(run_dir: Path, row: dict[str, Any]) -> None:
    with open(run_dir / LOG_FILE, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")


def _pretrain_callback(state: PretrainState, thresholds: list[int]) -> Any:
    from transformers import TrainerCallback

    class PretrainCallback(TrainerCallback):
        """Complete models at token thresholds, held-out bits, and a JSONL log."""

        def __init__(self) -> None:
            self.pending = [t for t in thresholds if not tokens_dir(state.run_dir, t).exists()]

        def on_train_begin(self, args: Any, st: Any, control: Any, **kw: Any) -> None:
            state.start = time.perf_counter()
            state.overhead_s = 0.0
            state.session_tokens0 = st.num_input_tokens_seen

        def on_step_end(self, args: Any, st: Any, control: Any, **kw: Any) -> None:
            seen = st.num_input_tokens_seen
            while self.pending and seen >= self.pending[0]:
                self.save(self.pending.pop(0), st)

        def save(self, threshold: int, st: Any) -> None:
            t0 = time.perf_counter()
            row = evaluate_now(state, st.num_input_tokens_seen, st.global_step)
            row["tokens_requested"] = threshold
            target = tokens_dir(state.run_dir, threshold)
            row["dir"] = str(target)
            if st.is_world_process_zero:
                save_complete_model(state, target, row)
                _append_log(state.run_dir, {"event": "checkpoint", **row})
            state.records[threshold] = row
            state.overhead_s += time.perf_counter() - t0

        def on_log(self, args: Any, st: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if not st.is_world_process_zero or not logs or "loss" not in logs:
                return
            row = {
                "event": "log",
                "step": st.global_step,
                "tokens_seen": st.num_input_tokens_seen,
                "elapsed_s": round(time.perf_counter() - state.start, 3),
                "loss": logs.get("loss"),
                "bits_per_token": round(logs["loss"] / math.log(2), 5),
                "learning_rate": logs.get("learning_rate"),
                "grad_norm": logs.get("grad_norm"),
            }
            _append_log(state.run_dir, row)

        def on_train_end(self, args: Any, st: Any, control: Any, **kw: Any) -> None:
            # Wrapped packing leaves one short row per map batch, so the last step may end a
            # few tokens below a threshold at max_tokens: save those with the final state.
            # A run stopped early (a callback, a time limit) has not reached them: skip.
            if st.global_step < st.max_steps:
                return
            while self.pending:
                self.save(self.pending.pop(0), st)

    return PretrainCallback()


# --------------------------------------------------------------------------------------------
# Entry point


@dataclass
class PretrainResult:
    run_dir: Path
    final_dir: Path
    checkpoints: dict[int, Path]
    manifest: dict[str, Any]


def count_parameters(model: PreTrainedModel) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    embed = model.get_input_embeddings().weight.numel()
    return {"parameters": total, "non_embedding_parameters": total - embed}


def _write_manifest(run_dir: Path, manifest: dict[str, Any], state: PretrainState) -> None:
    manifest["checkpoints"] = [state.records[k] for k in sorted(state.records)]
    atomic_write_json(run_dir / MANIFEST, manifest)


def pretrain(
    recipe: PretrainRecipe,
    *,
    resume: bool = True,
    progress: bool = True,
    callbacks: Sequence[Any] = (),
) -> PretrainResult:
    """Run the pre-training described by `recipe`; return where its models are.

    A finished run (final model + complete manifest) is not recomputed; an interrupted one
    resumes from its last Trainer checkpoint when `resume` is true. `callbacks` are extra
    transformers callbacks (tests use one to simulate an interruption).
    """
    run_dir = Path(recipe.output_dir)
    final_dir = run_dir / FINAL_DIR
    manifest_path = run_dir / MANIFEST
    if (final_dir / "config.json").exists() and manifest_path.exists():
        done = json.loads(manifest_path.read_text(encoding="utf-8"))
        if done.get("complete"):
            log.info("pre-training already complete in %s", run_dir)
            return PretrainResult(
                run_dir, final_dir,
                {c["tokens_requested"]: Path(c["dir"]) for c in done["checkpoints"]}, done,
            )
    with _quiet_progress(not progress):
        return _pretrain(recipe, run_dir, resume=resume, progress=progress, callbacks=callbacks)


@contextlib.contextmanager
def _quiet_progress(quiet: bool) -> Iterator[None]:
    """Without a progress display, also silence the per-map and per-save tqdm bars."""
    if not quiet:
        yield
        return
    import datasets
    from transformers.utils import logging as hf_logging

    ds_was, hf_was = datasets.is_progress_bar_enabled(), hf_logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if ds_was:
            datasets.enable_progress_bars()
        if hf_was:
            hf_logging.enable_progress_bar()


def _pretrain(
    recipe: PretrainRecipe, run_dir: Path, *, resume: bool, progress: bool,
    callbacks: Sequence[Any],
) -> PretrainResult:
    from transformers import set_seed
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTTrainer

    from resistkit.models import build_tiny_model

    final_dir = run_dir / FINAL_DIR
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "pretrain_recipe.yaml", dump_recipe(recipe))
    atomic_write_json(run_dir / "pretrain_env.json", {**environment(), "seed": recipe.seed})
    set_seed(recipe.seed)

    t0 = time.perf_counter()
    train_ds = load_texts(recipe, recipe.data.split, shuffle=True)
    tok_info = prepare_tokenizer(recipe, run_dir, train_ds)
    tokenizer = load_run_tokenizer(run_dir)
    tok_info["vocab_size"] = len(tokenizer)
    model = build_tiny_model(recipe.model, tokenizer, recipe.seed)
    config = build_trainer_config(recipe, run_dir)
    per_step = tokens_per_step_of(config.to_dict(), config.world_size)

    blocks = None
    heldout_docs = 0
    if recipe.data.heldout_split is not None:
        heldout = load_texts(recipe, recipe.data.heldout_split, shuffle=False)
        heldout_docs = len(heldout)
        blocks = heldout_blocks(
            tokenizer, heldout[recipe.data.text_column], config.max_length,
            recipe.heldout_max_tokens,
        )

    state = PretrainState(
        run_dir=run_dir, tokenizer=tokenizer, blocks=blocks,
        eval_batch_size=recipe.eval_batch_size, save_dtype=recipe.save_dtype, unigram_bits=None,
    )
    # Records of token checkpoints saved before an interruption.
    for info_path in sorted((run_dir / TOKENS_DIR).glob(f"*/{CHECKPOINT_INFO}")):
        row = json.loads(info_path.read_text(encoding="utf-8"))
        row["dir"] = str(info_path.parent)
        state.records[int(row["tokens_requested"])] = row

    all_callbacks: list[Any] = [_pretrain_callback(state, recipe.save_at_tokens), *callbacks]
    if not progress:
        config.disable_tqdm = True
    elif "disable_tqdm" not in recipe.train:
        from trl.trainer.callbacks import RichProgressCallback

        config.disable_tqdm = True
        all_callbacks.append(RichProgressCallback())
    trainer = SFTTrainer(
        model=model, args=config, train_dataset=train_ds, processing_class=tokenizer,
        callbacks=all_callbacks,
    )
    if config.disable_tqdm:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    state.trainer = trainer
    setup_s = time.perf_counter() - t0

    train_ids = packed_token_ids(trainer.train_dataset)
    if blocks is not None:
        state.unigram_bits = round(unigram_bits_per_token(train_ids, blocks, len(tokenizer)), 5)
    manifest: dict[str, Any] = {
        "complete": False,
        "seed": recipe.seed,
        "model": recipe.model.model_dump(),
        **count_parameters(model),
        "tokenizer": tok_info,
        "data": {
            "dataset": recipe.data.dataset,
            "split": recipe.data.split,
            "heldout_split": recipe.data.heldout_split,
            "train_documents": len(train_ds),
            "train_tokens_per_epoch": int(len(train_ids)),
            "heldout_documents": heldout_docs,
            "heldout_tokens_evaluated": int(blocks[:, 1:].numel()) if blocks is not None else 0,
        },
        "max_tokens": recipe.max_tokens,
        "tokens_per_step": per_step,
        "max_steps": config.max_steps,
        "save_dtype": recipe.save_dtype,
        "unigram_bits_per_token": state.unigram_bits,
        "setup_s": round(setup_s, 2),
    }

    last = None
    ckpt_root = run_dir / CHECKPOINTS_DIR
    if resume and ckpt_root.is_dir():
        last = get_last_checkpoint(str(ckpt_root))
    if last is not None:
        step = json.loads((Path(last) / "trainer_state.json").read_text())["global_step"]
        truncate_jsonl_log(run_dir / LOG_FILE, step)
        # Token checkpoints already on disk are kept: the replayed steps give the same weights.
        log.info("resuming from %s", last)
    elif (run_dir / LOG_FILE).exists():
        (run_dir / LOG_FILE).unlink()
    _write_manifest(run_dir, manifest, state)

    result = trainer.train(resume_from_checkpoint=last)

    t_final = time.perf_counter()
    tokens_seen = trainer.state.num_input_tokens_seen
    final_row = evaluate_now(state, tokens_seen, trainer.state.global_step)
    final_row["dir"] = str(final_dir)
    if trainer.is_world_process_zero():
        save_complete_model(state, final_dir, final_row)
        _append_log(run_dir, {"event": "final", **final_row})
        manifest.update(
            complete=True,
            final=final_row,
            train_loss=result.metrics.get("train_loss"),
            final_save_s=round(time.perf_counter() - t_final, 2),
        )
        _write_manifest(run_dir, manifest, state)
    trainer.accelerator.wait_for_everyone()
    return PretrainResult(
        run_dir, final_dir, {k: Path(v["dir"]) for k, v in state.records.items()}, manifest
    )
