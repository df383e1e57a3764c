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
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resistkit.errors import DataSpecError
from resistkit.files import atomic_write_json, atomic_write_text
from resistkit.recipes import dump_recipe
from resistkit.runinfo import environment
from resistkit.training import common
from resistkit.training.heldout import (
    heldout_blocks,
    packed_token_ids,
    unigram_bits_per_token,
)
from resistkit.training.layout import (
    CHECKPOINT_INFO,
    CHECKPOINTS_DIR,
    FINAL_DIR,
    TOKENIZER_DIR,
    TOKENS_DIR,
    log_file,
    manifest_file,
    tokens_dir,
)
from resistkit.training.pretrain_checkpoints import (
    KIND,
    PretrainState,
    append_log,
    evaluate_now,
    pretrain_callback,
    save_complete_model,
)
from resistkit.training.pretrain_recipe import (
    PretrainRecipe,
    build_trainer_config,
    load_pretrain_recipe,
    tokens_per_step_of,
)

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

__all__ = ["PretrainRecipe", "load_pretrain_recipe", "pretrain", "tokens_dir"]

# --------------------------------------------------------------------------------------------
# Data and tokenizer


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
        raise DataSpecError(
            f"dataset {spec.dataset!r} (split {split!r}) has no column {spec.text_column!r} "
            f"(data.text_column); columns: {', '.join(ds.column_names)}"
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
    atomic_write_json(manifest_file(run_dir, KIND), manifest)


def pretrain(
    recipe: PretrainRecipe,
    *,
    resume: bool = True,
    progress: bool = True,
    callbacks: Sequence[Any] = (),
) -> PretrainResult:
    """Run the pre-training described by `recipe`; return where its models are.

    A finished run (final model + complete manifest) is not recomputed; an interrupted one
    resumes from its last complete Trainer checkpoint when `resume` is true. `callbacks` are
    extra transformers callbacks (tests use one to simulate an interruption).
    """
    run_dir = Path(recipe.output_dir)
    final_dir = run_dir / FINAL_DIR
    done = common.finished(manifest_file(run_dir, KIND), final_dir)
    if done is not None and done.get("complete"):
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


def _heldout(recipe: PretrainRecipe, tokenizer: Any, block: int) -> tuple[Any, int]:
    """Held-out blocks (None without a held-out split) and the number of documents."""
    if recipe.data.heldout_split is None:
        return None, 0
    heldout = load_texts(recipe, recipe.data.heldout_split, shuffle=False)
    blocks = heldout_blocks(tokenizer, heldout[recipe.data.text_column], block,
                            recipe.heldout_max_tokens)
    return blocks, len(heldout)


def _saved_records(run_dir: Path) -> dict[int, dict[str, Any]]:
    """Records of token checkpoints saved before an interruption (kept: the replayed steps give
    the same weights)."""
    records = {}
    for info_path in sorted((run_dir / TOKENS_DIR).glob(f"*/{CHECKPOINT_INFO}")):
        row = json.loads(info_path.read_text(encoding="utf-8"))
        row["dir"] = str(info_path.parent)
        records[int(row["tokens_requested"])] = row
    return records


def _start_manifest(recipe: PretrainRecipe, model: Any, tok_info: dict[str, Any],
                    train_docs: int, train_ids: Any, heldout: tuple[Any, int], config: Any,
                    state: PretrainState, setup_s: float) -> dict[str, Any]:
    blocks, heldout_docs = heldout
    return {
        "complete": False,
        "seed": recipe.seed,
        "model": recipe.model.model_dump(),
        **count_parameters(model),
        "tokenizer": tok_info,
        "data": {
            "dataset": recipe.data.dataset,
            "split": recipe.data.split,
            "heldout_split": recipe.data.heldout_split,
            "train_documents": train_docs,
            "train_tokens_per_epoch": int(len(train_ids)),
            "heldout_documents": heldout_docs,
            "heldout_tokens_evaluated": int(blocks[:, 1:].numel()) if blocks is not None else 0,
        },
        "max_tokens": recipe.max_tokens,
        "tokens_per_step": tokens_per_step_of(config.to_dict(), config.world_size),
        "max_steps": config.max_steps,
        "save_dtype": recipe.save_dtype,
        "unigram_bits_per_token": state.unigram_bits,
        "setup_s": round(setup_s, 2),
    }


def _pretrain(
    recipe: PretrainRecipe, run_dir: Path, *, resume: bool, progress: bool,
    callbacks: Sequence[Any],
) -> PretrainResult:
    from transformers import set_seed
    from trl import SFTTrainer

    from resistkit.models.tiny import build_tiny_model

    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / f"{KIND}_recipe.yaml", dump_recipe(recipe))
    atomic_write_json(run_dir / f"{KIND}_env.json", {**environment(), "seed": recipe.seed})
    set_seed(recipe.seed)

    t0 = time.perf_counter()
    train_ds = load_texts(recipe, recipe.data.split, shuffle=True)
    tok_info = prepare_tokenizer(recipe, run_dir, train_ds)
    tokenizer = load_run_tokenizer(run_dir)
    tok_info["vocab_size"] = len(tokenizer)
    model = build_tiny_model(recipe.model, tokenizer, recipe.seed)
    config = build_trainer_config(recipe, run_dir)
    heldout = _heldout(recipe, tokenizer, config.max_length)
    state = PretrainState(
        run_dir=run_dir, tokenizer=tokenizer, blocks=heldout[0],
        eval_batch_size=recipe.eval_batch_size, save_dtype=recipe.save_dtype, unigram_bits=None,
        records=_saved_records(run_dir),
    )
    all_callbacks: list[Any] = [pretrain_callback(state, recipe.save_at_tokens), *callbacks]
    if progress:
        all_callbacks += common.progress_callbacks(config, recipe.train, progress)
    else:
        config.disable_tqdm = True
    trainer = SFTTrainer(model=model, args=config, train_dataset=train_ds,
                         processing_class=tokenizer, callbacks=all_callbacks)
    common.quiet_printer(trainer)
    state.trainer = trainer

    train_ids = packed_token_ids(trainer.train_dataset)
    if heldout[0] is not None:
        state.unigram_bits = round(unigram_bits_per_token(train_ids, heldout[0],
                                                          len(tokenizer)), 5)
    manifest = _start_manifest(recipe, model, tok_info, len(train_ds), train_ids, heldout,
                               config, state, time.perf_counter() - t0)
    last = common.resume_point(run_dir / CHECKPOINTS_DIR, log_file(run_dir, KIND),
                               resume=resume, main=trainer.is_world_process_zero())
    _write_manifest(run_dir, manifest, state)
    result = trainer.train(resume_from_checkpoint=str(last) if last else None)
    _finish(state, manifest, result, time.perf_counter())
    return PretrainResult(run_dir, run_dir / FINAL_DIR,
                          {k: Path(v["dir"]) for k, v in state.records.items()}, manifest)


def _finish(state: PretrainState, manifest: dict[str, Any], result: Any, t_final: float) -> None:
    """Evaluate and save the final model, then mark the manifest complete."""
    trainer, run_dir = state.trainer, state.run_dir
    final_dir = run_dir / FINAL_DIR
    final_row = evaluate_now(state, trainer.state.num_input_tokens_seen, trainer.state.global_step)
    final_row["dir"] = str(final_dir)
    if trainer.is_world_process_zero():
        save_complete_model(state, final_dir, final_row)
        append_log(run_dir, {"event": "final", **final_row})
        manifest.update(
            complete=True,
            final=final_row,
            train_loss=result.metrics.get("train_loss"),
            final_save_s=round(time.perf_counter() - t_final, 2),
        )
        _write_manifest(run_dir, manifest, state)
    trainer.accelerator.wait_for_everyone()
