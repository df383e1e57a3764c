"""Fitting a pooled-probe judge: a frozen encoder, mean-pooled layers, a logistic regression.

The settings (encoder, layers, C) were chosen by 5-fold cross-validation on ``train``
(``benchmarks/judge_mpnet.py``, docs/judge.md); the held-out split is only read by the
evaluation that follows the fit. The regression is the usual L2-penalised one,
``min ½‖w‖² + C Σ log-loss`` on standardised features with an unpenalised intercept, solved
by L-BFGS in float64 from zero, so the same features always give the same probe.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from resistkit.judge.examples import Examples
from resistkit.judge.tasks import JudgeTask
from resistkit.judge.train import TrainedClassifier

log = logging.getLogger(__name__)

_MAX_ITER = 500


def probe_model(encoder_dir: str, task: JudgeTask) -> tuple[Any, Any]:
    """An unfitted probe classifier around the encoder's weights, and the encoder's tokenizer."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from resistkit.models.probe import PooledProbeConfig, PooledProbeForSequenceClassification

    encoder = AutoModel.from_pretrained(encoder_dir, dtype=torch.float32)
    settings = encoder.config.to_dict()
    for key in ("architectures", "_name_or_path", "transformers_version", "dtype",
                "torch_dtype"):
        settings.pop(key, None)
    config = PooledProbeConfig(
        encoder=settings, layers=task.layers, num_labels=2, id2label=task.id2label,
        label2id={v: k for k, v in task.id2label.items()},
        pad_token_id=encoder.config.pad_token_id)
    model = PooledProbeForSequenceClassification(config)
    model.encoder.load_state_dict(encoder.state_dict())
    return model.eval(), AutoTokenizer.from_pretrained(encoder_dir)


def pooled_features(model: Any, tokenizer: Any, ex: Examples, max_length: int,
                    batch_size: int = 32) -> Any:
    """The probe's input for each example, in length-sorted batches (padding is masked out)."""
    import torch

    from resistkit import progress

    n = len(ex)
    order = sorted(range(n), key=lambda i: len(ex.texts[i]))
    out = torch.zeros(n, model.probe.in_features, dtype=torch.float64)
    reporter = progress.current()
    reporter.start("embedding", n, "text")
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            enc = tokenizer([ex.texts[i] for i in idx], truncation=True,
                            max_length=max_length, padding=True, return_tensors="pt")
            out[idx] = model.features(enc["input_ids"], enc["attention_mask"]).double()
            reporter.update(done=min(start + batch_size, n))
    return out


def fit_logistic(x: Any, y: Any, c: float) -> tuple[Any, Any, float, int]:
    """L2 logistic regression on standardised ``x``, returned on the raw scale: (weight,
    bias, mean log-loss, L-BFGS iterations) with ``x @ weight + bias`` the logit."""
    import torch

    mean = x.mean(0)
    std = x.std(0, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    z = (x - mean) / std
    target = y.double()
    w = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=_MAX_ITER, tolerance_grad=1e-9,
                            tolerance_change=1e-12, history_size=20,
                            line_search_fn="strong_wolfe")

    def objective() -> Any:
        opt.zero_grad()
        loss = 0.5 * (w * w).sum() + c * torch.nn.functional.binary_cross_entropy_with_logits(
            z @ w + b, target, reduction="sum")
        loss.backward()
        return loss

    opt.step(objective)
    iterations = int(opt.state_dict()["state"][0]["n_iter"])
    with torch.no_grad():
        weight = w / std
        bias = b - (weight * mean).sum()
        mean_loss = float(torch.nn.functional.binary_cross_entropy_with_logits(
            x @ weight + bias, target))
    return weight.detach(), bias.detach(), mean_loss, iterations


def train_probe(encoder_dir: str, task: JudgeTask, train: Examples) -> TrainedClassifier:
    """Embed ``train`` with the frozen encoder and fit the task's probe on it."""
    import torch

    if train.prompts is not None:
        raise ValueError(f"the {task.name} probe reads single texts, not (prompt, text) pairs")
    started = time.perf_counter()
    model, tokenizer = probe_model(encoder_dir, task)
    x = pooled_features(model, tokenizer, train, task.max_length)
    log.info("embedded %d texts in %.0f s; fitting the probe (C %g)", len(train),
             time.perf_counter() - started, task.c)
    weight, bias, loss, iterations = fit_logistic(x, torch.tensor(train.labels), task.c)
    with torch.no_grad():
        model.probe.weight.copy_(weight.float().unsqueeze(0))
        model.probe.bias.copy_(bias.float().reshape(1))
    out = TrainedClassifier(model, tokenizer, len(train), steps=iterations, losses=[loss])
    out.seconds = time.perf_counter() - started
    return out
