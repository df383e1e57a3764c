"""`resistkit run`: Settings I–III end to end on a micro base, resumption, nesting, reports."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from resistkit.experiment import load_experiment, run_experiment


def experiment(repo: Path, name: str, out: Path, base: Path, *sets: str):
    return load_experiment(str(repo / "recipes/tiny" / name),
                           [f"output_dir={out}", f"model.name_or_path={base}", *sets])


def manifest_times(run_dir: Path) -> dict[str, int]:
    return {str(p.relative_to(run_dir)): p.stat().st_mtime_ns
            for p in run_dir.rglob("manifest.json")}


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_setting2_end_to_end_report_and_skip(repo: Path, micro_base: Path, tmp_path: Path) -> None:
    exp = experiment(repo, "setting2.yaml", tmp_path / "run", micro_base)
    summary = run_experiment(exp)
    run_dir = Path(summary["run_dir"])
    report = (run_dir / "report" / "report.md").read_text()
    assert "rebound.png" in report and (run_dir / "report" / "rebound.png").stat().st_size > 5000
    rows = read_csv(run_dir / "report" / "results.csv")
    points = {(int(r["q1"]), int(r["q2"])) for r in rows}
    assert points == {(-1, -1)} | {(q1, q2) for q1 in (16, 32) for q2 in (0, 16, 32)}
    assert all(int(r["n"]) + int(r["nan"]) == 16 for r in rows)
    drops = read_csv(run_dir / "report" / "rebound_summary.csv")
    means = {(int(r["q1"]), int(r["q2"])): float(r["mean"]) for r in rows}
    assert [int(d["q1"]) for d in drops] == [16, 32]
    for d in drops:
        q1 = int(d["q1"])
        assert float(d["early_drop"]) == pytest.approx(means[(q1, 16)] - means[(q1, 0)])
    for name in ("experiment.yaml", "env.json", "plan.json"):
        assert (run_dir / name).exists()

    # Everything done: a second run recomputes nothing.
    before = manifest_times(run_dir)
    again = run_experiment(exp)
    assert all(s["status"] == "done" for s in again["stages"])
    assert manifest_times(run_dir) == before

    # A decoding change re-runs generation and scoring only, never training.
    changed = experiment(repo, "setting2.yaml", tmp_path / "run", micro_base,
                         "eval.generation.max_new_tokens=8")
    status = {s["stage"]: s["status"] for s in run_experiment(changed, dry_run=True)["stages"]}
    assert {k for k, v in status.items() if v == "stale"} == {
        k for k in status if k.endswith(("/generate", "/score"))
    }
    run_experiment(changed)
    after = manifest_times(run_dir)
    assert all(after[k] == before[k] for k in before if "/train/" in k)
    assert any(after[k] != before[k] for k in before if k.endswith("generate/manifest.json"))

    # The report is regenerated from the run directory alone, through the CLI.
    from typer.testing import CliRunner

    from resistkit.cli import app

    (run_dir / "report" / "results.csv").unlink()
    result = CliRunner().invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert read_csv(run_dir / "report" / "results.csv")


def test_nested_equals_separate_runs(repo: Path, micro_base: Path, tmp_path: Path) -> None:
    """Under a constant schedule, slices of one run score exactly like separate runs."""
    sets = ["setting2.q1=[16]", "setting2.q2=[0,16,32]"]
    nested = run_experiment(experiment(repo, "setting2.yaml", tmp_path / "nested", micro_base,
                                       *sets, "setting2.nested=always"))
    separate = run_experiment(experiment(repo, "setting2.yaml", tmp_path / "separate",
                                         micro_base, *sets, "setting2.nested=never"))
    assert nested["nested"] is True and separate["nested"] is False
    assert nested["train_samples_nested"] < nested["train_samples_naive"]
    a = read_csv(Path(nested["run_dir"]) / "report" / "results.csv")
    b = read_csv(Path(separate["run_dir"]) / "report" / "results.csv")
    assert [(r["q1"], r["q2"], r["mean"]) for r in a] == [(r["q1"], r["q2"], r["mean"]) for r in b]
    gen_a = (Path(nested["run_dir"]) / "seed-42/points/q1-16/q2-32/generate/generations.jsonl")
    gen_b = (Path(separate["run_dir"]) / "seed-42/points/q1-16/q2-32/generate/generations.jsonl")
    responses = [json.loads(x)["response"] for x in gen_a.read_text().splitlines()]
    assert responses == [json.loads(x)["response"] for x in gen_b.read_text().splitlines()]


def test_non_constant_schedule_falls_back_to_separate_runs(repo: Path, micro_base: Path,
                                                           tmp_path: Path) -> None:
    exp = experiment(repo, "setting2.yaml", tmp_path / "run", micro_base,
                     "train.lr_scheduler_type=linear")
    plan = run_experiment(exp, dry_run=True)
    assert plan["nested"] is False and "linear" in plan["nested_reason"]
    names = [s["stage"] for s in plan["stages"] if s["kind"] == "train"]
    assert "seed-42/train/forward-q1-16" in names and "seed-42/train/inverse-q1-32-q2-16" in names


def test_paper_grid_dry_run_nested_saves_training(repo: Path) -> None:
    """The paper's grid: nested processes <= 60 % of the naive schedule's samples."""
    exp = load_experiment(str(repo / "recipes/setting2.yaml"))
    plan = run_experiment(exp, dry_run=True)
    assert plan["nested"] is True
    assert plan["train_samples_nested"] <= 0.6 * plan["train_samples_naive"]


def test_fingerprints_do_not_depend_on_where_the_run_lives(repo: Path, tmp_path: Path) -> None:
    """A moved run directory keeps its finished stages, the DPO inverse included."""
    from resistkit.pipeline.settings import build_plan

    prints = []
    for where in ("a", "b/deeper"):
        exp = load_experiment(str(repo / "recipes/tiny/setting2.yaml"), [
            f"output_dir={tmp_path / where}", "setting2.inverse_method=dpo",
        ])
        plan, _ = build_plan(exp, tmp_path / where)
        prints.append({name: stage.fingerprint for name, stage in plan.stages.items()})
    assert any("inverse" in name for name in prints[0])
    assert prints[0] == prints[1]


def test_dpo_and_reverse_ablations_run(repo: Path, micro_base: Path, tmp_path: Path) -> None:
    sets = ["setting2.q1=[16]", "setting2.q2=[0,16]", "eval.prompts.num_samples=8"]
    dpo = run_experiment(experiment(repo, "setting2.yaml", tmp_path / "dpo", micro_base, *sets,
                                    "setting2.inverse_method=dpo",
                                    "setting2.inverse_train={beta: 0.1}"))
    pairs = Path(dpo["run_dir"]) / "seed-42/data/inverse-pairs/pairs.jsonl"
    row = json.loads(pairs.read_text().splitlines()[0])
    assert set(row) == {"prompt", "chosen", "rejected"}
    assert len(read_csv(Path(dpo["run_dir"]) / "report/results.csv")) == 3
    rev = run_experiment(experiment(repo, "setting2.yaml", tmp_path / "rev", micro_base, *sets,
                                    "setting2.reverse=true"))
    recipe = (Path(rev["run_dir"]) / "seed-42/train/forward/train_recipe.yaml").read_text()
    assert "builtin:reviews/negative" in recipe


def test_compression_trajectory_and_hooke_estimate(repo: Path, micro_base: Path,
                                                    tmp_path: Path) -> None:
    comp = ("eval.compression=[{dataset: builtin:pretrain, split: heldout, num_samples: 16}, "
            "{dataset: builtin:reviews/positive, split: heldout, num_samples: 16}]")
    summary = run_experiment(experiment(repo, "setting2.yaml", tmp_path / "run", micro_base,
                                        "setting2.q1=[16]", comp))
    out = Path(summary["run_dir"]) / "report"
    assert (out / "compression.png").exists()
    rows = read_csv(out / "results.csv")
    key = "bits_per_token[builtin:reviews/positive:heldout]"
    assert all(float(r[key]) > 0 for r in rows)
    hooke = read_csv(out / "hooke.csv")
    assert len(hooke) == 1 and float(hooke[0]["k_ci95_low"]) <= float(hooke[0]["k_hat"]) \
        <= float(hooke[0]["k_ci95_high"])


def test_domain_control_is_the_baseline(repo: Path, micro_base: Path, tmp_path: Path) -> None:
    plan = run_experiment(experiment(
        repo, "setting2.yaml", tmp_path / "run", micro_base,
        "setting2.control={dataset: builtin:reviews/all, num_samples: 16}",
    ), dry_run=True)
    stages = {s["stage"]: s for s in plan["stages"]}
    assert stages["seed-42/train/control"]["train_samples"] == 16
    assert stages["seed-42/points/base/generate"]["model"] == "seed-42/train/control/final"
    assert stages["seed-42/train/forward"]["model"] == "seed-42/train/control/final"


def test_setting1_pairs_table(repo: Path, micro_base: Path, tmp_path: Path) -> None:
    summary = run_experiment(experiment(repo, "setting1.yaml", tmp_path / "run", micro_base))
    rows = read_csv(Path(summary["run_dir"]) / "report" / "results.csv")
    assert {r["pair"] for r in rows} == {"theta16/theta32", "theta16/theta48", "theta32/theta48"}
    for r in rows:
        diff = float(r["inverse_loss"]) - float(r["forward_loss"])
        assert float(r["inverse_minus_forward"]) == pytest.approx(diff)
        assert float(r["forward_final_target_loss"]) > 0
    assert "resistance" in (Path(summary["run_dir"]) / "report" / "report.md").read_text()
    assert (Path(summary["run_dir"]) / "report" / "resistance.png").stat().st_size > 5000


def test_setting3_sweeps_base_models(repo: Path, micro_base: Path, tmp_path: Path) -> None:
    other = micro_base.parent / "slices" / "samples-0000064"
    exp = load_experiment(str(repo / "recipes/tiny/setting3.yaml"), [
        f"output_dir={tmp_path / 'run'}",
        f"setting3.models=[{{label: t64, model: {{name_or_path: {other}}}}}, "
        f"{{label: t128, model: {{name_or_path: {micro_base}}}}}]",
    ])
    summary = run_experiment(exp)
    rows = read_csv(Path(summary["run_dir"]) / "report" / "results.csv")
    assert {r["model"] for r in rows} == {"t64", "t128"}


@pytest.mark.slow
def test_killed_run_resumes_with_the_same_numbers(repo: Path, micro_base: Path,
                                                   tmp_path: Path) -> None:
    sets = [f"model.name_or_path={micro_base}", "train.save_steps=1"]
    ref = run_experiment(experiment(repo, "setting2.yaml", tmp_path / "ref", micro_base,
                                    "train.save_steps=1"))
    run_dir = tmp_path / "killed"
    cmd = [sys.executable, "-m", "resistkit", "run", str(repo / "recipes/tiny/setting2.yaml"),
           "-o", str(run_dir)] + [a for s in sets for a in ("--set", s)]
    proc = subprocess.Popen(cmd, env=os.environ, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    target = run_dir / "seed-42/train/inverse-q1-16/checkpoints"
    while time.time() < deadline and proc.poll() is None:
        if target.exists() and any(target.glob("checkpoint-*")):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    assert not (run_dir / "report").exists(), "the run finished before it could be killed"
    done_before = manifest_times(run_dir)
    subprocess.run(cmd, env=os.environ, check=True, capture_output=True)
    done_after = manifest_times(run_dir)
    assert all(done_after[k] == v for k, v in done_before.items())  # finished work kept
    a = read_csv(Path(ref["run_dir"]) / "report" / "results.csv")
    b = read_csv(run_dir / "report" / "results.csv")
    assert [(r["q1"], r["q2"], r["mean"]) for r in a] == [(r["q1"], r["q2"], r["mean"]) for r in b]


def test_hooke_across_pretraining_volumes(repo: Path, tmp_path: Path) -> None:
    """The shipped Hooke recipe on three checkpoints of one micro pre-training run: every row
    knows its exact |D_pre|, and the report fits how k̂ grows with it."""
    import yaml

    from resistkit.training.pretrain import load_pretrain_recipe, pretrain, tokens_dir

    raw = yaml.safe_load((repo / "recipes/pretrain/micro.yaml").read_text())
    raw.update(max_tokens=8192, save_at_tokens=[2048, 4096, 8192], heldout_max_tokens=2048)
    raw["data"]["num_samples"] = 200
    (tmp_path / "pre.yaml").write_text(yaml.safe_dump(raw))
    pre = tmp_path / "pre"
    pretrain(load_pretrain_recipe(tmp_path / "pre.yaml", [f"output_dir={pre}"]), progress=False)
    volumes = {f"v{n}": tokens_dir(pre, n) for n in (2048, 4096, 8192)}
    models = ", ".join(f"{{label: {k}, model: {{name_or_path: '{v}'}}}}"
                       for k, v in volumes.items())
    comp = ("eval.compression=[{dataset: builtin:pretrain, split: heldout, num_samples: 24}, "
            "{dataset: builtin:reviews/positive, split: heldout, num_samples: 24}, "
            "{dataset: builtin:reviews/negative, split: heldout, num_samples: 24}]")
    exp = load_experiment(str(repo / "recipes/tiny/hooke.yaml"), [
        f"output_dir={tmp_path / 'run'}", f"model.name_or_path={volumes['v2048']}",
        f"setting3.models=[{models}]", "seeds=[42]", "setting2.q1=[16]",
        "setting2.q2=[0, 16, 32]", "train.per_device_train_batch_size=8",
        "eval.prompts.num_samples=8", "eval.generation.max_new_tokens=8", comp,
    ])
    out = Path(run_experiment(exp)["run_dir"]) / "report"
    hooke = {r["model"]: r for r in read_csv(out / "hooke.csv")}
    assert set(hooke) == set(volumes)
    seen = {k: json.loads((v / "pretrain_checkpoint.json").read_text())["tokens_seen"]
            for k, v in volumes.items()}
    for label, row in hooke.items():
        assert int(row["pretrain_tokens"]) == seen[label] >= int(label[1:])
        # The same 16 positive snippets aligned every base: one |D_align| for all three.
        assert float(row["k_predicted"]) == pytest.approx(seen[label] / float(row["align_tokens"]))
    assert len({r["align_tokens"] for r in hooke.values()}) == 1
    # Training on negatives moves the negative set's bits/token: its slope is reported.
    assert all(float(r["slope_perturb_bits_per_sample"]) < 0 for r in hooke.values())
    scaling = read_csv(out / "hooke_scaling.csv")
    assert len(scaling) == 1 and int(scaling[0]["volumes"]) == 3
    assert (out / "hooke.png").stat().st_size > 5000
    assert "Does k̂ grow with the pre-training volume?" in (out / "report.md").read_text()
