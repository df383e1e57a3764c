"""The run contract: the report reads the plan, compression sets declare roles, one model
resolver for every command, one error type handled at the CLI entry."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from resistkit.cli import app
from resistkit.experiment import load_experiment, run_experiment
from resistkit.pipeline import layout


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_report_after_shrinking_the_grid_covers_only_the_plan(
    repo: Path, micro_base: Path, tmp_path: Path
) -> None:
    recipe = str(repo / "recipes/tiny/setting2.yaml")
    sets = [f"output_dir={tmp_path / 'run'}", f"model.name_or_path={micro_base}",
            "setting2.q1=[16]", "eval.prompts.num_samples=8"]
    run_experiment(load_experiment(recipe, [*sets, "setting2.q2=[0,16,32]"]))
    old_point = tmp_path / "run" / layout.SeedLayout(42).point(16, 32) / "score"
    assert (old_point / "manifest.json").exists()
    run_experiment(load_experiment(recipe, [*sets, "setting2.q2=[0,16]"]))
    assert (old_point / "manifest.json").exists()  # still on disk, but not in the plan
    rows = read_csv(tmp_path / "run" / "report" / "results.csv")
    assert {(int(r["q1"]), int(r["q2"])) for r in rows} == {(-1, -1), (16, 0), (16, 16)}
    assert "Not finished yet" not in (tmp_path / "run" / "report" / "report.md").read_text()


def test_report_lists_planned_points_without_results(repo: Path, micro_base: Path,
                                                     tmp_path: Path) -> None:
    recipe = str(repo / "recipes/tiny/setting2.yaml")
    sets = [f"output_dir={tmp_path / 'run'}", f"model.name_or_path={micro_base}",
            "setting2.q1=[16]", "eval.prompts.num_samples=8"]
    run_experiment(load_experiment(recipe, [*sets, "setting2.q2=[0,16]"]))
    # The recipe grows by one point; the run directory is reported before it runs again.
    exp = load_experiment(recipe, [*sets, "setting2.q2=[0,16,32]"])
    (tmp_path / "run" / layout.EXPERIMENT_FILE).write_text(
        yaml.safe_dump(exp.model_dump(mode="json"), sort_keys=False))
    result = CliRunner().invoke(app, ["report", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    report = (tmp_path / "run" / "report" / "report.md").read_text()
    # q2=16 too: the nested inverse run now saves at 16 and 32, so its stage is another one.
    assert "Not finished yet** (2 planned" in report and "q1=16 q2=32" in report
    rows = read_csv(tmp_path / "run" / "report" / "results.csv")
    assert {(int(r["q1"]), int(r["q2"])) for r in rows} == {(-1, -1), (16, 0)}


def test_compression_sets_state_their_role(repo: Path) -> None:
    exp = load_experiment(str(repo / "recipes/quickstart.yaml"))
    assert [c.role for c in exp.eval.compression] == ["pretrain", "align", "perturb"]
    reverse = load_experiment(str(repo / "recipes/quickstart.yaml"), ["setting2.reverse=true"])
    assert [c.role for c in reverse.eval.compression] == ["pretrain", "perturb", "align"]
    # A stated role wins over the guess from the data set's name, and is kept out of the
    # stage fingerprint (it changes how the report reads a set, not what is measured).
    from resistkit.experiment import run_experiment as plan

    comp = ("eval.compression=[{dataset: builtin:pretrain/wiki, split: heldout, "
            "num_samples: 8, role: other}]")
    stated = load_experiment(str(repo / "recipes/quickstart.yaml"), [comp])
    assert stated.eval.compression[0].role == "other"
    moved = comp.replace("role: other", "role: pretrain")
    a = {s["stage"]: s for s in plan(stated, dry_run=True)["stages"]}
    b = {s["stage"]: s for s in plan(load_experiment(str(repo / "recipes/quickstart.yaml"),
                                                     [moved]), dry_run=True)["stages"]}
    assert a.keys() == b.keys()


def test_two_sets_with_one_role_are_refused(repo: Path) -> None:
    from resistkit.errors import RecipeError

    comp = ("eval.compression=[{dataset: builtin:pretrain, split: heldout, num_samples: 8}, "
            "{dataset: builtin:pretrain/wiki, split: heldout, num_samples: 8, role: pretrain}]")
    with pytest.raises(RecipeError, match=r"eval.compression.1.role: 'pretrain' is already"):
        load_experiment(str(repo / "recipes/quickstart.yaml"), [comp])


def test_score_accepts_builtin_model_names(tmp_path: Path) -> None:
    gen = tmp_path / "gen.jsonl"
    gen.write_text("".join(json.dumps({"prompt": "The film", "response": r}) + "\n"
                           for r in (" was a delight.", " bored me.")))
    result = CliRunner().invoke(app, ["score", str(gen), "-s", "compression", "--model",
                                      "builtin:tiny-base", "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "gen.scores.jsonl").read_text().splitlines()]
    assert all(r["compression_bits_per_token"] > 0 for r in rows)
    summary = json.loads((tmp_path / "gen.summary.json").read_text())
    assert summary["scorers"]["compression"]["model"]["source"] == "builtin"


def test_a_model_not_on_this_machine_is_one_line_and_exit_2(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from resistkit.models import builtin

    monkeypatch.setattr(builtin, "SMOLLM2_PACKAGE", "no-such-package")
    monkeypatch.setenv("RESISTKIT_CACHE", str(tmp_path))
    result = CliRunner().invoke(app, ["generate", str(repo / "recipes/tiny/sft.yaml"),
                                      "--model", "smollm2-135m"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: smollm2-135m is not ready")
    assert "resistkit models download smollm2-135m" in lines[0]
    assert "Traceback" not in result.output
    verbose = CliRunner().invoke(app, ["generate", str(repo / "recipes/tiny/sft.yaml"),
                                       "--model", "smollm2-135m", "-v"])
    assert verbose.exit_code == 2 and "Traceback" in verbose.output


def test_layout_names_every_stage_the_planner_makes(repo: Path) -> None:
    exp = load_experiment(str(repo / "recipes/tiny/setting2.yaml"))
    from resistkit.pipeline import plan_experiment

    plan, _ = plan_experiment(exp)
    lay = layout.SeedLayout(42)
    expected = {lay.forward(), lay.inverse(16), lay.inverse(32)}
    for q1 in (None, 16, 32):
        for q2 in ((0, 16, 32) if q1 else (None,)):
            point = lay.point(q1, q2)
            expected |= {layout.eval_stage(point, layout.GENERATE),
                         layout.eval_stage(point, layout.SCORE)}
            if q1:  # KL to the base at every point but the base itself
                expected.add(layout.eval_stage(point, layout.KL))
    assert set(plan.stages) == expected
    assert {(p.label["q1"], p.label["q2"]) for p in plan.points} == {
        (-1, -1), *((q1, q2) for q1 in (16, 32) for q2 in (0, 16, 32))}


def test_report_holds_exactly_the_files_of_the_current_plan(repo: Path, micro_base: Path,
                                                            tmp_path: Path) -> None:
    """A figure or table of an earlier plan does not outlive it; a user's file in report/ is
    never deleted: the report refuses, naming it, and leaves it as it was."""
    recipe = str(repo / "recipes/tiny/setting2.yaml")
    sets = [f"output_dir={tmp_path / 'run'}", f"model.name_or_path={micro_base}",
            "setting2.q1=[16]", "setting2.q2=[0,16]", "eval.prompts.num_samples=8"]
    kl = "eval.kl={dataset: builtin:reviews/all, split: heldout, num_samples: 8}"
    run_experiment(load_experiment(recipe, [*sets, kl]))
    report = tmp_path / "run" / "report"
    assert {"kl.png", "kl_table.csv"} <= {p.name for p in report.iterdir()}
    rows = read_csv(report / "results.csv")
    assert all(float(r["kl"]) > 0 for r in rows if int(r["q1"]) >= 0)  # KL is in results.csv
    run_experiment(load_experiment(recipe, [*sets, "eval.kl=null"]))
    names = {p.name for p in report.iterdir()}
    assert "kl.png" not in names and "kl_table.csv" not in names
    assert "kl" not in read_csv(report / "results.csv")[0]
    assert str(tmp_path) not in (report / "report.md").read_text()  # no absolute paths
    (report / "notes.txt").write_text("mine")
    result = CliRunner().invoke(app, ["report", str(tmp_path / "run")])
    assert result.exit_code == 2 and "notes.txt was not written by resistkit" in result.output
    assert (report / "notes.txt").read_text() == "mine"
    assert (report / "report.md").exists()


def test_margin_name_may_not_shadow_a_scorer_column(repo: Path) -> None:
    from resistkit.errors import RecipeError

    with pytest.raises(RecipeError, match="eval.margin.name"):
        load_experiment(str(repo / "recipes/tiny/safety.yaml"),
                        ["eval.margin.name=refusal", "eval.metric=refusal"])


def test_status_says_what_run_will_do(repo: Path, micro_base: Path, tmp_path: Path) -> None:
    """The report is a stage of the status: a run whose report was cut short is not complete;
    an interrupted evaluation stage starts over, an interrupted training stage resumes."""
    import shutil

    from resistkit.pipeline.status import run_status

    recipe = str(repo / "recipes/tiny/setting2.yaml")
    sets = [f"output_dir={tmp_path / 'run'}", f"model.name_or_path={micro_base}",
            "setting2.q1=[16]", "setting2.q2=[0,16]", "eval.prompts.num_samples=8"]
    run_experiment(load_experiment(recipe, sets))
    run = tmp_path / "run"
    assert run_status(run).complete
    # A kill while the report is written leaves the old report (or none) and report.tmp.
    shutil.move(str(run / "report"), str(run / "report.tmp"))
    state = run_status(run)
    assert not state.complete
    assert [s.state for s in state.stages if s.kind == "report"] == ["pending"]
    shutil.move(str(run / "report.tmp"), str(run / "report"))
    assert run_status(run).complete
    # An evaluation stage without its manifest (killed mid-way) restarts; say so.
    comp = run / layout.SeedLayout(42).point(16, 16) / "score"
    manifest = json.loads((comp / "manifest.json").read_text())
    (comp / "manifest.json").unlink()  # as a kill before the manifest leaves it
    (comp / "pending.json").write_text(json.dumps({"fingerprint": manifest["fingerprint"]}))
    why = {s.name: s.why for s in run_status(run).stages}
    assert "starts over" in why[str(comp.relative_to(run))]
    report = [s for s in run_status(run).stages if s.kind == "report"][0]
    assert report.state == "done"  # the report was written from this plan; a stage is not


def test_run_log_follows_the_run(repo: Path, tmp_path: Path) -> None:
    """run.log holds what the console says and every stage's start and end, as it happens."""
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "run", str(repo / "recipes/tiny/safety.yaml"), "-o", str(out),
        "--set", "setting2.q1=[16]", "--set", "setting2.q2=[0,16]",
        "--set", "eval.sample_at_q2=[0]"])
    assert result.exit_code == 0, result.output
    log = (out / "run.log").read_text()
    plan = json.loads((out / layout.PLAN_FILE).read_text())
    names = [s["stage"] for s in plan["stages"]]
    assert names, plan
    for name in names:
        assert f"start {name} (" in log and f"done {name} in " in log, name
    assert "precision: auto:" in log and "point  seed 42 q1=16 q2=16" in log
