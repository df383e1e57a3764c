"""Trust: provenance (inputs changed → stale), integrity (damaged outputs → rerun), exact resume
(SIGKILL at each stage kind → the same report, byte for byte), inputs never touched."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from resistkit.cli import app
from resistkit.errors import RunError
from resistkit.experiment import load_experiment, run_experiment
from resistkit.pipeline import layout, plan_experiment
from resistkit.recipes import load_recipe
from resistkit.training.train import train

LAY = layout.SeedLayout(42)


def micro_setting2(repo: Path, out: Path, base: Path, *sets: str):
    return load_experiment(str(repo / "recipes/tiny/setting2.yaml"), [
        f"output_dir={out}", f"model.name_or_path={base}", "setting2.q1=[16]",
        "setting2.q2=[0,16,32]", "eval.prompts.num_samples=8", *sets])


def statuses(exp) -> dict[str, str]:
    plan, _ = plan_experiment(exp)
    return {name: plan.status(stage) for name, stage in plan.stages.items()}


def test_replaced_base_weights_make_every_stage_stale(repo: Path, micro_base: Path,
                                                      tmp_path: Path) -> None:
    base = tmp_path / "base"
    shutil.copytree(micro_base, base)
    exp = micro_setting2(repo, tmp_path / "run", base)
    run_experiment(exp)
    assert set(statuses(exp).values()) == {"done"}
    # Other weights at the same path (a later checkpoint of the same run).
    other = micro_base.parent / "slices" / "samples-0000064" / "model.safetensors"
    shutil.copy(other, base / "model.safetensors")
    after = statuses(micro_setting2(repo, tmp_path / "run", base))
    assert set(after.values()) == {"stale"}


def test_truncated_output_is_recomputed_and_counted_from_the_data(
    repo: Path, micro_base: Path, tmp_path: Path
) -> None:
    exp = micro_setting2(repo, tmp_path / "run", micro_base)
    run_experiment(exp)
    gen = tmp_path / "run" / LAY.point(16, 16) / "generate" / layout.GENERATIONS
    full = gen.read_text()
    gen.write_text("".join(full.splitlines(keepends=True)[:3]))  # truncated
    status = statuses(exp)
    assert status[f"{LAY.point(16, 16)}/generate"] == "stale"
    assert status[f"{LAY.point(16, 0)}/generate"] == "done"
    summary = run_experiment(exp)
    assert gen.read_text() == full  # regenerated, same seeds: same file
    rows = {(r["q1"], r["q2"]): r for r in _csv(Path(summary["report"]).parent / "results.csv")}
    assert rows[("16", "16")]["n"] == "8"


def test_torn_manifest_makes_its_stage_stale_not_a_crash(repo: Path, micro_base: Path,
                                                         tmp_path: Path) -> None:
    exp = micro_setting2(repo, tmp_path / "run", micro_base)
    run_experiment(exp)
    manifest = tmp_path / "run" / LAY.point(16, 32) / "score" / "manifest.json"
    manifest.write_text(manifest.read_text()[:40])
    plan, _ = plan_experiment(exp)
    stage = plan.stages[f"{LAY.point(16, 32)}/score"]
    assert plan.check(stage) == ("stale", "manifest.json is damaged or from an older resistkit")
    run_experiment(exp)
    assert json.loads(manifest.read_text())["stage"] == stage.name


def test_train_into_a_run_of_another_recipe_names_the_changes(repo: Path, tmp_path: Path) -> None:
    sets = [f"output_dir={tmp_path / 'run'}", "save_at_samples=[16]"]
    first = train(load_recipe(repo / "recipes/tiny/sft.yaml", sets), progress=False)
    weights = (first.final_dir / "model.safetensors").read_bytes()
    result = CliRunner().invoke(app, ["train", str(repo / "recipes/tiny/sft.yaml"),
                                      *[a for s in sets for a in ("--set", s)],
                                      "--set", "train.learning_rate=5e-4"])
    assert result.exit_code == 2, result.output
    assert "recipe.train.learning_rate: 0.001 -> 0.0005" in result.output
    assert "--force" in result.output
    assert (first.final_dir / "model.safetensors").read_bytes() == weights  # untouched
    forced = CliRunner().invoke(app, ["train", str(repo / "recipes/tiny/sft.yaml"),
                                      *[a for s in sets for a in ("--set", s)],
                                      "--set", "train.learning_rate=5e-4", "--force"])
    assert forced.exit_code == 0, forced.output
    assert (first.final_dir / "model.safetensors").read_bytes() != weights
    recipe = (tmp_path / "run" / "train_recipe.yaml").read_text()
    assert "learning_rate: 0.0005" in recipe


def test_a_resume_never_mixes_two_settings(repo: Path, tmp_path: Path) -> None:
    sets = [f"output_dir={tmp_path / 'run'}", "save_at_samples=[16]"]
    train(load_recipe(repo / "recipes/tiny/sft.yaml", sets), progress=False)
    (tmp_path / "run" / "train_manifest.json").unlink()  # as if killed before the end
    changed = load_recipe(repo / "recipes/tiny/sft.yaml", [*sets, "seed=7"])
    with pytest.raises(RunError, match=r"recipe.seed: 42 -> 7"):
        train(changed, progress=False)


def test_score_never_overwrites_its_input(tmp_path: Path) -> None:
    gen = tmp_path / "gens.jsonl"
    gen.write_text("".join(json.dumps({"prompt": "p", "response": f"fine film {i}"}) + "\n"
                           for i in range(12)))
    before = gen.read_bytes()
    result = CliRunner().invoke(app, ["score", str(gen), "-s", "sentiment-lexicon",
                                      "--num-samples", "10", "-o", str(gen), "--no-progress"])
    assert result.exit_code == 2 and "is the input file" in result.output
    assert gen.read_bytes() == before
    ok = CliRunner().invoke(app, ["score", str(gen), "-s", "sentiment-lexicon", "-o",
                                  str(tmp_path / "out" / "s.jsonl"), "--no-progress"])
    assert ok.exit_code == 0, ok.output
    summary = tmp_path / "out" / "s.summary.json"  # beside the output, not the input
    assert summary.exists() and not (tmp_path / "gens.summary.json").exists()
    umask = os.umask(0)
    os.umask(umask)
    for path in (tmp_path / "out" / "s.jsonl", summary):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def _csv(path: Path) -> list[dict[str, str]]:
    import csv

    with open(path, encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _report_files(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((run_dir / "report").iterdir())}


@pytest.mark.slow
def test_kill_matrix_gives_the_same_report_byte_for_byte(repo: Path, micro_base: Path,
                                                          tmp_path: Path) -> None:
    """SIGKILL during each stage kind (and the report), one after another in one run
    directory, resuming each time: every report file then equals an uninterrupted run's, and
    so do the whole-run training figures. Each kill lands in a process that resumed from the
    one before, so a resume that left anything behind — a torn file, a stale lock, a partial
    output taken for done — is carried into the end result and caught there; it costs two
    runs instead of six."""
    run_dir = tmp_path / "run"
    comp = ("eval.compression=[{dataset: builtin:pretrain, split: heldout, num_samples: 12}, "
            "{dataset: builtin:reviews/positive, split: heldout, num_samples: 12}]")
    sets = [f"model.name_or_path={micro_base}", "setting2.q1=[16]", "setting2.q2=[0,16,32]",
            "eval.prompts.num_samples=8", "eval.generation.batch_size=4", "train.save_steps=1",
            comp]
    argv = ["run", str(repo / "recipes/tiny/setting2.yaml"), "-o", str(run_dir),
            *[a for s in sets for a in ("--set", s)]]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    subprocess.run([sys.executable, "-m", "resistkit", *argv], env=env, check=True,
                   capture_output=True)
    reference = _report_files(run_dir)
    forward = json.loads((run_dir / LAY.forward() / "manifest.json").read_text())["outputs"]
    assert {"hooke.csv", "results.csv", "report.md", "rebound.png"} <= set(reference)
    shutil.rmtree(run_dir)
    harness = str(Path(__file__).parent / "_kill_harness.py")
    # Counted from each process's start: the 3rd logged training step of the first process,
    # the 3rd generated batch of the second (which resumes the killed training first)...
    for point, nth in (("train", 3), ("generate", 3), ("score", 2), ("compression", 3),
                       ("report", 2)):
        killed = subprocess.run([sys.executable, harness, point, str(nth), "--", *argv],
                                env=env, capture_output=True, text=True)
        assert killed.returncode == -9, (point, killed.stderr[-2000:])
    again = subprocess.run([sys.executable, "-m", "resistkit", *argv], env=env,
                           capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert _report_files(run_dir) == reference
    resumed = json.loads((run_dir / LAY.forward() / "manifest.json").read_text())["outputs"]
    assert resumed["train_loss"] == forward["train_loss"]
    assert resumed["tokens_at_samples"] == forward["tokens_at_samples"]
