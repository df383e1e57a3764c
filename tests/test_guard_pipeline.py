"""The judges and prompt sets of issue #27 in a run: samples to break from a harmful rate, a
score or a prompt set's column; the pre-run check of a prompt set's judges; ``data list``."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from resistkit.report import behaviour
from resistkit.report.behaviour import break_columns, break_rows, harm_break, summarize_breaks
from resistkit.scoring.guard import PRESETS

# ---- samples to break from a "higher = more harmful" column --------------------------------


def test_harm_break_is_the_refusal_rule_on_the_safe_share() -> None:
    # h0 = 0.25: the target is (1 + 0.25) / 2 = 0.625, crossed between 0.5 (Q2 50) and 0.75
    # (Q2 100) at 50 + 50 * 0.125 / 0.25 = 75.
    assert harm_break([(0, 0.25), (50, 0.5), (100, 0.75)]) == pytest.approx(75)
    assert harm_break([(0, 0.25), (50, 0.75)]) == pytest.approx(37.5)
    assert math.isinf(harm_break([(0, 0.25), (50, 0.625)]))  # reaching it is not passing it
    assert math.isinf(harm_break([(0, 0.0), (50, 0.4), (100, 0.5)]))  # h0 = 0: past 0.5
    assert harm_break([(0, 0.0), (50, 0.4), (100, 0.6)]) == pytest.approx(75)
    assert math.isnan(harm_break([(0, 1.0), (50, 1.0)]))  # nothing safe left to lose
    assert math.isnan(harm_break([(50, 0.9)]))  # no aligned value


def test_break_columns_follow_the_scorers_declarations_under_a_prompt_sets_prefix() -> None:
    columns = ["advbench_llama_guard", "advbench_llama_guard_category",
               "advbench_llama_guard_harmful", "harmful", "harmbench_harmful", "refusal",
               "safety_judge", "strongreject", "xstest_safe_refusal", "xstest_safe_refusal_n"]
    assert break_columns(columns) == [
        ("advbench_llama_guard_harmful", "rises"), ("harmful", "rises"),
        ("harmbench_harmful", "rises"), ("strongreject", "rises"),
        ("xstest_safe_refusal", "falls")]


def _curves() -> tuple[list[dict], dict]:
    """A margin curve per seed (θ0 at 0, aligned at 1) and sampled columns at Q2 0, 50, 100."""
    metric_rows = [{"model": "m", "q1": -1, "q2": -1, "_seed_values": {1: 0.0, 2: 0.0}}]
    metric_rows += [{"model": "m", "q1": 16, "q2": q2, "_seed_values": {1: v, 2: v}}
                    for q2, v in ((0, 1.0), (50, 0.75), (100, 0.25))]
    per_q2 = {  # column -> seed -> values at Q2 0, 50, 100
        "refusal": {1: (0.8, 0.5, 0.1), 2: (0.8, 0.3, 0.1)},
        "advbench_llama_guard_harmful": {1: (0.25, 0.5, 0.75), 2: (0.25, 0.75, 1.0)},
        "strongreject": {1: (0.1, 0.2, 0.3), 2: (0.1, 0.2, 0.3)},
        "xstest_safe_refusal": {1: (0.5, 0.375, 0.125), 2: (0.5, 0.375, 0.125)},
    }
    rates: dict[tuple, dict[int, dict[str, Any]]] = {}
    for i, q2 in enumerate((0, 50, 100)):
        rates[("m", 16, q2)] = {s: {c: (v[s][i], 16, 0.1) for c, v in per_q2.items()}
                                for s in (1, 2)}
    return metric_rows, rates


def test_break_rows_give_each_judge_column_its_break() -> None:
    metric_rows, rates = _curves()
    others = break_columns(["advbench_llama_guard_harmful", "strongreject",
                            "xstest_safe_refusal"])
    plain = break_rows(metric_rows, rates, "refusal", "margin")[0]
    row = break_rows(metric_rows, rates, "refusal", "margin", others)[0]
    assert {k: row[k] for k in plain} == plain  # margin and refusal as without the others
    assert row["margin_break_seed_1"] == pytest.approx(75)  # 1 → 0.5 between 0.75 and 0.25
    assert row["refusal_break_seed_1"] == pytest.approx(62.5)  # 0.8 → 0.4: 50 + 50 * 0.1 / 0.4
    assert row["advbench_llama_guard_harmful_break_seed_1"] == pytest.approx(75)
    assert row["advbench_llama_guard_harmful_break_seed_2"] == pytest.approx(37.5)
    assert row["advbench_llama_guard_harmful_break"] == \
        summarize_breaks([75.0, 37.5], 100)["samples_to_break"]
    # StrongREJECT 0.1 → 0.3 never passes (1 + 0.1) / 2 = 0.55 by the last Q2.
    assert math.isinf(row["strongreject_break_seed_1"]) and row["strongreject_break"] == "> 100"
    # Over-refusal 0.5 → 0.375 → 0.125 falls below 0.25 at 50 + 50 * 0.125 / 0.25 = 75.
    assert row["xstest_safe_refusal_break_seed_2"] == pytest.approx(75)


def test_the_report_writes_the_judge_breaks(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    metric_rows, rates = _curves()
    monkeypatch.setattr(behaviour, "collect_rates", lambda plan: rates)
    ev = SimpleNamespace(prompts=SimpleNamespace(dataset="builtin:safety/prompts",
                                                 split="heldout"),
                         sample_at_q2=[0, 50, 100], margin=SimpleNamespace(name="margin"),
                         prompt_sets=[SimpleNamespace(name="advbench", dataset="hf:x",
                                                      split="train")])
    lines, _ = behaviour.behaviour_section(SimpleNamespace(eval=ev), None,  # type: ignore[arg-type]
                                           metric_rows, "margin", tmp_path, setting3=False)
    with open(tmp_path / "samples_to_break.csv", encoding="utf-8") as fh:
        row = next(csv.DictReader(fh))
    assert float(row["advbench_llama_guard_harmful_break_seed_2"]) == pytest.approx(37.5)
    assert row["strongreject_break"] == "> 100" and row["refusal_break"]
    report = "\n".join(lines)
    assert "| advbench_llama_guard_harmful_break |" in report
    assert "h > (1 + h0) / 2" in report


# ---- preflight: a prompt set's own judge resolves before any stage -------------------------


def _guarded(repo: Path, tmp_path: Path, scorers: str) -> Path:
    text = (repo / "recipes/tiny/safety.yaml").read_text().replace(
        "  scorers: [refusal]\n", "  scorers: [refusal]\n  prompt_sets:\n    - {name: adv, "
        f"dataset: builtin:safety/prompts, split: heldout, num_samples: 4, scorers: {scorers}}}\n")
    path = tmp_path / "r.yaml"
    path.write_text(text.replace("output_dir: runs/tiny-safety", f"output_dir: {tmp_path}/run"))
    return path


@pytest.mark.parametrize(("sets", "key", "words"), [
    # The default judge of a scorer only the prompt set runs: the prompt set's scorer is blamed.
    ([], "eval.prompt_sets.0.scorers.1",
     "llama-guard's default judge (llama_guard_model: "
     f"{PRESETS['llama-guard'].default_model})"),
    # A judge the recipe names: the option that names it.
    (["eval.scorer_options={llama_guard_model: /nowhere/guard}"],
     "eval.scorer_options.llama_guard_model", "/nowhere/guard"),
])
def test_a_prompt_sets_unresolvable_judge_fails_before_any_stage(
        repo: Path, tmp_path: Path, sets: list[str], key: str, words: str) -> None:
    from resistkit.errors import RecipeError
    from resistkit.experiment import load_experiment, run_experiment

    exp = load_experiment(str(_guarded(repo, tmp_path, "[refusal, llama-guard]")), sets)
    with pytest.raises(RecipeError) as err:
        run_experiment(exp)
    assert err.value.key == key and words in str(err.value)
    assert len(str(err.value).splitlines()) == 1
    assert not (tmp_path / "run").exists()
    # A dry run plans past a hub judge that is only out of reach here, and says so.
    if not sets:
        plan = run_experiment(exp, dry_run=True)
        assert any("cannot be checked here" in n for n in plan.get("notes", [])), plan.keys()


# ---- data list ------------------------------------------------------------------------------


def test_data_list_shows_the_prompt_sets_in_the_table_and_the_json() -> None:
    from typer.testing import CliRunner

    from resistkit.cli import app

    hub = ("hf:walledai/AdvBench", "hf:walledai/HarmBench", "hf:walledai/StrongREJECT",
           "hf:walledai/XSTest", "hf:PKU-Alignment/BeaverTails-Evaluation")
    out = CliRunner().invoke(app, ["data", "list"], env={"COLUMNS": "200"}).output
    for name in hub:
        assert name in out
    items = json.loads(CliRunner().invoke(app, ["data", "list", "--json"]).output)
    listed = {i["name"]: i for i in items if i["kind"] == "hub"}
    assert set(hub) <= set(listed)
    assert {"safe", "unsafe"} <= set(listed["hf:walledai/XSTest"]["selectors"])
    assert all(listed[name]["licence"] for name in hub)
    assert {i["kind"] for i in items} == {"builtin", "hub"}
