"""``sentiment-classifier``: probability of the positive label from any sequence classifier."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from resistkit.scoring.lexicon import scored_text
from resistkit.scoring.models import (
    describe_model,
    length_sorted_batches,
    load_pretrained,
    load_tokenizer,
    max_input_length,
    split_revision,
)
from resistkit.scoring.registry import Batch, Columns, ScoringContext, ScoringError, register_scorer

# Names that mean "positive" in common sentiment checkpoints, best first. LABEL_1 is what an
# unnamed binary head gets, and by convention index 1 is the positive class.
POSITIVE_NAMES = ("positive", "pos", "label_1")


def positive_index(id2label: Mapping[Any, str], positive_label: str | int | None) -> int:
    """Which output index means positive: an explicit index or name, else a known name."""
    labels = {int(k): str(v) for k, v in id2label.items()}
    if positive_label is not None:
        text = str(positive_label).strip()
        if text.lstrip("-").isdigit():
            index = int(text)
            if index not in labels:
                raise ScoringError(f"positive label index {index} out of range for labels {labels}")
            return index
        for index, name in labels.items():
            if name.lower() == text.lower():
                return index
        raise ScoringError(f"positive label {text!r} not among the model's labels {labels}")
    for wanted in POSITIVE_NAMES:
        for index, name in labels.items():
            if name.lower() == wanted:
                return index
    raise ScoringError(
        f"cannot tell which label is positive among {labels}; "
        "pass positive_label (--positive-label) as an index or a label name"
    )


@register_scorer(
    "sentiment-classifier",
    columns={"sentiment_classifier": "P(positive); higher = more positive"},
    description="sequence classifier probability of the positive label",
    uses_prompt=True,
)
def sentiment_classifier(
    batch: Batch,
    ctx: ScoringContext,
    *,
    classifier: str | None = None,
    positive_label: str | None = None,
    with_prompt: bool = False,
    batch_size: int = 32,
    max_length: int | None = None,
    device: str = "auto",
    dtype: str = "auto",
) -> Columns:
    import torch
    from transformers import AutoModelForSequenceClassification

    if not classifier:
        raise ScoringError(
            "sentiment-classifier needs a model: pass classifier= (--classifier) a hub id or "
            "a local AutoModelForSequenceClassification directory"
        )
    from resistkit.judge import JudgeError, resolve_judge

    try:
        classifier = resolve_judge(classifier)  # builtin:sentiment-judge → its cached directory
    except JudgeError as err:
        raise ScoringError(str(err)) from err
    path, revision = split_revision(classifier)
    tokenizer = load_tokenizer(path, revision)
    model, dev = load_pretrained(AutoModelForSequenceClassification, path, revision, dtype, device)
    num_labels = model.config.num_labels
    single_logit = num_labels == 1
    pos = 0 if single_logit else positive_index(model.config.id2label, positive_label)
    if getattr(model.config, "pad_token_id", None) is None:
        # Decoder classifiers locate the last real token through the pad id.
        model.config.pad_token_id = tokenizer.pad_token_id
    limit = max_input_length(tokenizer, model, max_length)
    ctx.note("model", describe_model(path, revision, model))
    ctx.note(
        "positive_label",
        "sigmoid of the single logit" if single_logit else f"{pos}: {model.config.id2label[pos]}",
    )
    ctx.note("max_length", limit)

    texts = scored_text(batch, with_prompt)
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=True)["input_ids"]]
    ctx.count("truncated", sum(n > limit for n in lengths))
    scores = [float("nan")] * len(texts)
    with torch.inference_mode():
        for idx in length_sorted_batches(lengths, batch_size):
            enc = tokenizer(
                [texts[i] for i in idx],
                truncation=True,
                max_length=limit,
                padding=True,
                return_tensors="pt",
            ).to(dev)
            logits = model(**enc).logits.float()
            if single_logit:
                probs = torch.sigmoid(logits[:, 0])
            else:
                probs = torch.softmax(logits, dim=-1)[:, pos]
            for i, p in zip(idx, probs.tolist(), strict=True):
                scores[i] = p
            ctx.advance(len(idx))
    return {"sentiment_classifier": scores}
