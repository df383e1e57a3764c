"""``sentiment-classifier``: probability of the positive label from any sequence classifier."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from resistkit.errors import ScoringError
from resistkit.scoring.batching import encoded_batches, max_input_length
from resistkit.scoring.lexicon import scored_text
from resistkit.scoring.registry import (
    Batch,
    Columns,
    ModelOptions,
    ScoringContext,
    register_scorer,
)

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
    model_options=ModelOptions(batch_size=32),
)
def sentiment_classifier(
    batch: Batch, ctx: ScoringContext, run: ModelOptions, *, classifier: str | None = None,
    positive_label: str | None = None, with_prompt: bool = False,
) -> Columns:
    import torch

    from resistkit.models import describe_model, load_classifier, load_tokenizer, resolve_model

    if not classifier:
        raise ScoringError(
            "sentiment-classifier needs a model: pass classifier= (--classifier) a hub id, "
            "a local AutoModelForSequenceClassification directory or builtin:sentiment-judge"
        )
    resolved = resolve_model(classifier)
    tokenizer = load_tokenizer(resolved, cache=True)
    model, dev = load_classifier(resolved, dtype=run.dtype, device=run.device, cache=True)
    single_logit = model.config.num_labels == 1
    pos = 0 if single_logit else positive_index(model.config.id2label, positive_label)
    limit = max_input_length(tokenizer, model, run.max_length)
    ctx.note("model", describe_model(resolved, model))
    ctx.note(
        "positive_label",
        "sigmoid of the single logit" if single_logit else f"{pos}: {model.config.id2label[pos]}",
    )
    ctx.note("max_length", limit)

    texts = scored_text(batch, with_prompt)
    scores = [float("nan")] * len(texts)
    with torch.inference_mode():
        for idx, enc in encoded_batches(tokenizer, texts, run.batch_size, limit, dev, ctx):
            logits = model(**enc).logits.float()
            if single_logit:
                probs = torch.sigmoid(logits[:, 0])
            else:
                probs = torch.softmax(logits, dim=-1)[:, pos]
            for i, p in zip(idx, probs.tolist(), strict=True):
                scores[i] = p
            ctx.advance(len(idx))
    return {"sentiment_classifier": scores}
