"""resistkit as installed: packaged recipes by name, `recipes`, `status`, dry runs of stages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomllib
import yaml
from typer.testing import CliRunner

from resistkit.catalog import find_recipe, list_recipes, packaged_names
from resistkit.cli import app
from resistkit.errors import RecipeError


def test_every_folder_is_a_listed_package(repo: Path) -> None:
    """pyproject lists packages by hand (recipes/ and accelerate_configs/ are mapped in);
    a folder left out would silently miss from the wheel."""
    setup = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setup["packages"])
    mapped = {v: k for k, v in setup["package-dir"].items() if k}
    expected = set()
    for folder in [repo / "src" / "resistkit", repo / "recipes", repo / "accelerate_configs"]:
        for sub in [folder, *[p for p in folder.rglob("*") if p.is_dir()]]:
            if sub.name == "__pycache__" or not any(f.is_file() for f in sub.iterdir()):
                continue
            rel = sub.relative_to(repo)
            top = mapped.get(rel.parts[0])
            name = ".".join([top, *rel.parts[1:]]) if top else ".".join(rel.parts[1:])
            expected.add(name)
    assert expected == listed


def test_recipe_names_resolve_and_a_path_wins(repo: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    packaged = find_recipe("tiny/setting2")
    assert packaged.read_text() == (repo / "recipes/tiny/setting2.yaml").read_text()
    for name in ("tiny/setting2.yaml", "recipes/tiny/setting2.yaml"):
        assert find_recipe(name).read_text() == packaged.read_text()
    assert {"quickstart", "setting2", "tiny/setting2", "cpu/smollm2_setting2"} <= set(
        packaged_names())
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quickstart").write_text("experiment: setting2\n")  # a file called so
    assert find_recipe("quickstart") == Path("quickstart")
    with pytest.raises(RecipeError, match="did you mean tiny/setting2"):
        find_recipe("tiny/setting22")


def test_every_recipe_says_what_it_is_for() -> None:
    infos = list_recipes()
    assert all(i.purpose and i.kind for i in infos)
    kinds = {i.name: i.kind for i in infos}
    assert kinds["quickstart"] == "setting2" and kinds["pretrain/micro"] == "pretrain"
    assert kinds["tiny/dpo"] == "train (dpo)"


def test_recipes_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["recipes", "list", "--names"])
    assert listed.exit_code == 0 and "tiny/setting2" in listed.output.split()
    shown = runner.invoke(app, ["recipes", "show", "quickstart"])
    assert shown.exit_code == 0 and "experiment: setting2" in shown.output
    copied = runner.invoke(app, ["recipes", "copy", "tiny/sft", str(tmp_path)])
    assert copied.exit_code == 0 and (tmp_path / "sft.yaml").exists()
    again = runner.invoke(app, ["recipes", "copy", "tiny/sft", str(tmp_path)])
    assert again.exit_code == 2 and "exists" in again.output


def test_stage_dry_runs_check_and_write_nothing(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    train = runner.invoke(app, ["train", "tiny/sft", "--dry-run"])
    assert train.exit_code == 0, train.output
    assert "would train sft on tiny: 128 rows x 1 epoch(s), 8 samples per step" in train.output
    pre = runner.invoke(app, ["pretrain", "pretrain/micro", "--dry-run"])
    assert pre.exit_code == 0 and "256 steps of 512" in pre.output
    assert list(tmp_path.iterdir()) == []


def _run(repo: Path, out: Path, base: Path, *sets: str):
    args = ["run", "tiny/setting2", "-o", str(out), "--set", f"model.name_or_path={base}",
            "--set", "setting2.q1=[16]", "--set", "setting2.q2=[0,16]", "--set",
            "eval.prompts.num_samples=8"]
    for item in sets:
        args += ["--set", item]
    return CliRunner().invoke(app, args)


def _status(run_dir: Path) -> dict:
    result = CliRunner().invoke(app, ["status", str(run_dir), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_status_of_a_finished_a_half_finished_and_a_changed_run(
    repo: Path, micro_base: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    first = _run(repo, out, micro_base)
    assert first.exit_code == 0, first.output
    lines = [line for line in first.output.splitlines() if line.strip()]
    assert lines[0] == "resistkit run tiny/setting2: checking inputs"
    assert lines[1].startswith("  setting2, ") and lines[1].endswith(f"-> {out}")
    assert any(line.startswith("  point  seed 42 q1=16 q2=16") for line in lines)
    assert (out / "run.log").exists()
    done = _status(out)
    assert done["complete"] and set(done["counts"]) == {"done"}
    assert done["seconds_by_kind"]["train"] > 0

    # Half-finished: one generate stage interrupted (its manifest gone, its work pending).
    (out / "seed-42/points/q1-16/q2-16/generate/manifest.json").unlink()
    (out / "seed-42/points/q1-16/q2-16/generate/pending.json").write_text("{}")
    half = _status(out)
    states = {s["name"]: (s["state"], s["why"]) for s in half["stages"]}
    assert states["seed-42/points/q1-16/q2-16/generate"][0] == "stale"
    assert states["seed-42/points/q1-16/q2-16/score"] == (
        "stale", "waits for seed-42/points/q1-16/q2-16/generate")
    assert half["left_by_kind"] == {"generate": 1, "score": 1}
    text = CliRunner().invoke(app, ["status", str(out)]).output
    assert f"continue with: resistkit run {out}" in text

    # `resistkit run RUN_DIR` continues the run from its own experiment.yaml.
    cont = CliRunner().invoke(app, ["run", str(out)])
    assert cont.exit_code == 0, cont.output
    assert _status(out)["complete"]

    # Changed: a new decoding setting makes generation and scoring stale, training done.
    exp = yaml.safe_load((out / "experiment.yaml").read_text())
    exp["eval"]["generation"]["max_new_tokens"] = 4
    (out / "experiment.yaml").write_text(yaml.safe_dump(exp))
    changed = _status(out)
    by_kind = {(s["kind"], s["state"]) for s in changed["stages"]}
    assert ("train", "done") in by_kind and ("generate", "stale") in by_kind
    assert ("generate", "done") not in by_kind
