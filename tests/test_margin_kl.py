"""Model-side metrics of Setting II: the likelihood margin, its per-seed table, the elastic fit
and KL to θ0 — each checked against a direct computation from the records or the models."""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path

import pytest

from resistkit.cli.console import Console, RunView
from resistkit.experiment import load_experiment, run_experiment
from resistkit.pipeline import layout

MARGIN_SETS = (
    "eval.compression=[{dataset: builtin:reviews/positive, split: heldout, num_samples: 24}, "
    "{dataset: builtin:reviews/negative, split: heldout, num_samples: 24}]"
)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def bits_per_token(path: Path) -> tuple[float, list[float], list[float]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    bits = [r["compression_bits"] for r in rows]
    tokens = [r["compression_tokens"] for r in rows]
    return sum(bits) / sum(tokens), bits, tokens


@pytest.fixture(scope="module")
def margin_run(repo: Path, micro_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("margin") / "run"
    exp = load_experiment(str(repo / "recipes/tiny/setting2.yaml"), [
        f"output_dir={out}", f"model.name_or_path={micro_base}", "seeds=[42, 43]",
        "eval.scorers=[]", "eval.prompts=null", MARGIN_SETS,
        "eval.margin={plus: builtin:reviews/positive:heldout, "
        "minus: builtin:reviews/negative:heldout}",
        "eval.kl={dataset: builtin:reviews/all, split: heldout, num_samples: 12}",
    ])
    assert exp.eval.metric == "likelihood_margin"
    # The console `resistkit run` prints, captured line by line (its margin is checked below).
    console = Console(live=False)
    lines: list[str] = []
    console.line = lines.append  # type: ignore[method-assign]
    view = RunView(console, exp)
    summary = run_experiment(exp, on_ready=view.ready, on_stage=view.started,
                             on_done=view.finished)
    (out / "console.txt").write_text("\n".join(lines) + "\n")
    names = [s["stage"] for s in summary["stages"]]
    assert not any(n.endswith(("/generate", "/score")) for n in names)  # nothing sampled
    return Path(summary["run_dir"])


def point_dir(run_dir: Path, seed: int, q1: int, q2: int) -> Path:
    where = "base" if q1 < 0 else f"q1-{q1}/q2-{q2}"
    return run_dir / f"seed-{seed}/points/{where}"


def direct_margin(run_dir: Path, seed: int, q1: int, q2: int) -> float:
    comp = point_dir(run_dir, seed, q1, q2) / "compression"
    plus = bits_per_token(comp / "compression-0.scores.jsonl")[0]
    minus = bits_per_token(comp / "compression-1.scores.jsonl")[0]
    return minus - plus


def test_margin_rows_equal_a_direct_computation(margin_run: Path) -> None:
    rows = read_csv(margin_run / "report/results.csv")
    assert {(int(r["q1"]), int(r["q2"])) for r in rows} == \
        {(-1, -1)} | {(q1, q2) for q1 in (16, 32) for q2 in (0, 16, 32)}
    for r in rows:
        q1, q2 = int(r["q1"]), int(r["q2"])
        direct = statistics.fmean(direct_margin(margin_run, s, q1, q2) for s in (42, 43))
        assert float(r["mean"]) == pytest.approx(direct, abs=1e-12)
        assert int(r["seeds"]) == 2
    report = (margin_run / "report/report.md").read_text()
    assert "Metric: `likelihood_margin`" in report and "rebound.png" in report


def test_console_margin_is_the_reports(margin_run: Path) -> None:
    """Each point's console line shows m = bits(minus) - bits(plus) of that point, by set name
    (the compression manifest lists the sets sorted, not in the recipe's order)."""
    lines = [ln for ln in (margin_run / "console.txt").read_text().splitlines()
             if ln.startswith("  point  ")]
    assert len(lines) == 2 * 7
    for line in lines:
        words = line.split()
        seed = int(words[words.index("seed") + 1])
        where = words[words.index("seed") + 2]
        q1, q2 = (-1, -1) if where == "base" else \
            (int(where.split("=")[1]), int(words[words.index("seed") + 3].split("=")[1]))
        shown = float(words[words.index("likelihood_margin") + 1])
        assert shown == pytest.approx(direct_margin(margin_run, seed, q1, q2), abs=6e-5), line


def test_seed_drops_are_paired_over_records(margin_run: Path) -> None:
    drops = read_csv(margin_run / "report/seed_drops.csv")
    assert {(int(d["q1"]), int(d["seed"])) for d in drops} == \
        {(q1, s) for q1 in (16, 32) for s in (42, 43)}
    for d in drops:
        q1, seed = int(d["q1"]), int(d["seed"])
        a = point_dir(margin_run, seed, q1, 0) / "compression"
        b = point_dir(margin_run, seed, q1, 16) / "compression"
        assert float(d["early_drop"]) == pytest.approx(
            direct_margin(margin_run, seed, q1, 16) - direct_margin(margin_run, seed, q1, 0),
            abs=1e-12)
        # Paired variance: per-record bit differences of each set, over the set's tokens.
        var = 0.0
        for i in (0, 1):
            _, bits_a, tokens = bits_per_token(a / f"compression-{i}.scores.jsonl")
            _, bits_b, _ = bits_per_token(b / f"compression-{i}.scores.jsonl")
            diffs = [y - x for x, y in zip(bits_a, bits_b, strict=True)]
            var += len(diffs) * statistics.variance(diffs) / sum(tokens) ** 2
        assert float(d["early_drop_paired_ci95_half"]) == pytest.approx(1.96 * math.sqrt(var))


def test_elastic_fit_is_least_squares_on_the_steps(margin_run: Path) -> None:
    fits = {f["seed"]: f for f in read_csv(margin_run / "report/elastic_fit.csv")}
    assert set(fits) == {"42", "43", "all"}
    for seed in (42, 43):
        v0 = direct_margin(margin_run, seed, -1, -1)
        xs, ys = [], []
        for q1 in (16, 32):
            line = [(q2, direct_margin(margin_run, seed, q1, q2)) for q2 in (0, 16, 32)]
            for (qa, va), (qb, vb) in zip(line, line[1:], strict=False):
                xs.append((va + vb) / 2 - v0)
                ys.append((vb - va) / (qb - qa))
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        k = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) \
            / sum((x - mx) ** 2 for x in xs)
        assert int(fits[str(seed)]["steps"]) == 4
        assert float(fits[str(seed)]["k_per_100"]) == pytest.approx(100 * k, rel=1e-9)
    assert int(fits["all"]["steps"]) == 8


def test_kl_matches_a_direct_computation_from_both_models(margin_run: Path,
                                                          micro_base: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    point = point_dir(margin_run, 43, 32, 16)
    model_dir = margin_run / layout.slice_of("seed-43/train/inverse-q1-32", 16)
    rows = [json.loads(x) for x in (point / "kl/kl.scores.jsonl").read_text().splitlines()]
    assert len(rows) == 12
    tok = AutoTokenizer.from_pretrained(micro_base)
    p = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    q = AutoModelForCausalLM.from_pretrained(micro_base).eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for row in rows:  # the held-out reviews: KL on the completion tokens only
            context = tok(row["prompt"])["input_ids"]
            ids = context + tok(row["completion"], add_special_tokens=False)["input_ids"]
            x = torch.tensor([ids])
            logp = torch.log_softmax(p(x).logits[0, len(context) - 1:-1].double(), -1)
            logq = torch.log_softmax(q(x).logits[0, len(context) - 1:-1].double(), -1)
            per_token = (logp.exp() * (logp - logq)).sum(-1)
            assert row["kl_tokens"] == per_token.numel()
            assert row["kl_model_ref"] == pytest.approx(per_token.mean().item(), abs=1e-5)
            total += per_token.sum().item()
            count += per_token.numel()
    manifest = json.loads((point / "kl/manifest.json").read_text())
    assert manifest["outputs"]["kl"] == pytest.approx(total / count, abs=1e-5)
    kl = read_csv(margin_run / "report/kl_table.csv")
    assert {(r["seed"], int(r["q1"])) for r in kl} == \
        {(s, q1) for s in ("42", "43", "mean") for q1 in (16, 32)}
    assert all(float(r["kl_after_alignment"]) > 0 for r in kl)
    assert (margin_run / "report/kl.png").stat().st_size > 5000
