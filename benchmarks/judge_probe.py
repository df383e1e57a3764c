"""Could a linear probe on SmolLM2's hidden states judge better than the MiniLM judges?

For each judge task (sentiment, safety) this embeds every train and held-out example with
SmolLM2-135M-Instruct (the mean of the decoder's hidden states over the text's tokens, at layers
6/10/14/18/22 of 30; for a safety pair, over the answer's tokens after the request in the
model's chat format), then scores candidate probes (logistic regression on standardised
features; each layer alone, all five concatenated, or one probe per layer with probabilities
averaged; C in 0.01-10) by 5-fold cross-validation on ``train`` (folds by request for safety).
The best by CV is refit on all of ``train`` and its held-out accuracy printed; the held-out
accuracy of every other candidate is printed for reference only, never used to choose.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/judge_probe.py [--task safety] [--quick]

Features are cached under ``--cache`` (default /tmp), so a second run only refits.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np
import torch

from resistkit.judge.examples import Examples, normalise_prompt
from resistkit.judge.tasks import TASKS

LAYERS = (6, 10, 14, 18, 22)
CS = (0.01, 0.1, 1.0, 10.0)


def embed(model, tok, ex: Examples, layers: tuple[int, ...], batch: int = 32,
          max_length: int = 128) -> dict[int, np.ndarray]:
    """Mean-pooled hidden states of each text (for pairs: the answer's tokens only, after
    the request in the model's chat format)."""
    texts, starts = [], []
    for i, text in enumerate(ex.texts):
        if ex.prompts is None:
            texts.append(text)
            starts.append(0)
            continue
        head = tok.apply_chat_template([{"role": "user", "content": ex.prompts[i]}],
                                       tokenize=False, add_generation_prompt=True)
        texts.append(head + text)
        starts.append(len(tok(head, add_special_tokens=False)["input_ids"]))
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = {layer: np.zeros((len(texts), model.config.hidden_size), np.float32)
           for layer in layers}
    tok.padding_side = "right"
    with torch.inference_mode():
        for b in range(0, len(order), batch):
            idx = order[b:b + batch]
            enc = tok([texts[i] for i in idx], return_tensors="pt", padding=True,
                      truncation=True, max_length=max_length, add_special_tokens=False)
            # The decoder alone: the LM head's 49k-wide logits are never read.
            hidden = model.model(**enc, output_hidden_states=True).hidden_states
            mask = enc["attention_mask"].clone()
            for row, i in enumerate(idx):
                # Keep at least the last token when the request fills the window.
                mask[row, :min(starts[i], int(mask[row].sum()) - 1)] = 0
            weights = mask.unsqueeze(-1).float()
            for layer in layers:
                pooled = (hidden[layer] * weights).sum(1) / weights.sum(1)
                out[layer][idx] = pooled.float().numpy()
    return out


def folds(ex: Examples, k: int, seed: int) -> list[list[int]]:
    """``k`` folds of row indices; by normalised prompt when the task has prompts, so that
    answers to one request never sit on both sides of a fold."""
    keys = ([normalise_prompt(p) for p in ex.prompts] if ex.prompts is not None
            else [str(i) for i in range(len(ex))])
    groups = sorted(set(keys))
    random.Random(seed).shuffle(groups)
    fold_of = {g: i % k for i, g in enumerate(groups)}
    return [[i for i, key in enumerate(keys) if fold_of[key] == f] for f in range(k)]


def fit(x: np.ndarray, y: np.ndarray, c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000)).fit(x, y)


def candidates(feats: dict[int, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Feature sets a probe may use: each layer alone, all layers concatenated, and all
    layers as separate probes whose probabilities are averaged."""
    out = {f"layer {layer}": [feats[layer]] for layer in LAYERS}
    out["concat"] = [np.concatenate([feats[layer] for layer in LAYERS], 1)]
    out["mean of layers"] = [feats[layer] for layer in LAYERS]
    return out


def predict(train_x: list[np.ndarray], y: np.ndarray, test_x: list[np.ndarray],
            c: float) -> np.ndarray:
    """P(label 1): one probe per feature block, probabilities averaged."""
    return np.mean([fit(a, y, c).predict_proba(b)[:, 1]
                    for a, b in zip(train_x, test_x, strict=True)], 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", choices=sorted(TASKS), action="append")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--quick", action="store_true", help="200 train / 100 held-out rows")
    ap.add_argument("--cache", default="/tmp", help="features are kept here between runs")
    args = ap.parse_args()
    from resistkit.models.load import load_causal_lm, load_tokenizer

    model, tok = None, None
    for name in args.task or sorted(TASKS):
        task = TASKS[name]
        train, held = task.examples("train"), task.examples("heldout")
        if args.quick:
            train, held = train.sample(200, 0), held.sample(100, 0)
        cache = Path(args.cache) / f"probe_{name}_{len(train)}_{len(held)}.npz"
        if cache.exists():
            data = np.load(cache)
            ftr = {layer: data[f"tr{layer}"] for layer in LAYERS}
            fho = {layer: data[f"ho{layer}"] for layer in LAYERS}
        else:
            if model is None:
                model, _ = load_causal_lm(args.model, device="cpu", dtype="float32")
                tok = load_tokenizer(args.model)
                # The layers above the deepest probed one are never read.
                model.model.layers = model.model.layers[:max(LAYERS)]
            start = time.time()
            ftr, fho = embed(model, tok, train, LAYERS), embed(model, tok, held, LAYERS)
            print(f"[{name}] embedded {len(train)} + {len(held)} rows in "
                  f"{time.time() - start:.0f} s, torch threads {torch.get_num_threads()}")
            np.savez(cache, **{f"tr{k}": v for k, v in ftr.items()},
                     **{f"ho{k}": v for k, v in fho.items()})
        ytr, yho = np.array(train.labels), np.array(held.labels)
        parts = folds(train, 5, 0)
        results = []
        tr_sets, ho_sets = candidates(ftr), candidates(fho)
        for cand, blocks in tr_sets.items():
            for c in CS:
                hits = 0
                for part in parts:
                    rest = np.setdiff1d(np.arange(len(ytr)), part)
                    prob = predict([b[rest] for b in blocks], ytr[rest],
                                   [b[part] for b in blocks], c)
                    hits += int(((prob >= 0.5) == ytr[part]).sum())
                ref = predict(blocks, ytr, ho_sets[cand], c)
                results.append((hits / len(ytr), cand, c, float(((ref >= 0.5) == yho).mean())))
                print(f"  {cand:<15} C {c:<5} 5-fold CV {hits / len(ytr):.3f}  held-out "
                      f"(reference only) {results[-1][3]:.3f}", flush=True)
        cv, cand, c, acc = max(results, key=lambda r: r[0])
        prob = predict(tr_sets[cand], ytr, ho_sets[cand], c)
        print(f"[{name}] chosen by 5-fold CV on train: {cand}, C {c} (CV {cv:.3f}) -> "
              f"held-out accuracy {acc:.3f} on {len(yho)}")
        np.save(Path(args.cache) / f"probe_{name}_heldout.npy", prob)


if __name__ == "__main__":
    main()
