from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from resistkit.recipes import RecipeError, load_recipe

GOOD = """
seed: 7
output_dir: runs/x
model: {name_or_path: tiny}
data: {dataset: builtin:reviews/positive, num_samples: 16}
train:
  learning_rate: 1e-5
  per_device_train_batch_size: 4
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return path


def test_good_recipe_parses_and_coerces_yaml11_floats(tmp_path: Path) -> None:
    recipe = load_recipe(write(tmp_path, GOOD))
    assert recipe.seed == 7
    # PyYAML reads "1e-5" as a string; the TRL field is a float, so it is coerced.
    assert recipe.train["learning_rate"] == pytest.approx(1e-5)
    assert recipe.model.tiny is not None  # tiny defaults filled in


def test_override_sets_nested_key(tmp_path: Path) -> None:
    recipe = load_recipe(write(tmp_path, GOOD), ["train.learning_rate=2e-5", "data.num_samples=8"])
    assert recipe.train["learning_rate"] == pytest.approx(2e-5)
    assert recipe.data.num_samples == 8


@pytest.mark.parametrize(
    ("text", "key", "suggestion"),
    [
        (GOOD + "  learnin_rate: 0.1\n", "train.learnin_rate", "learning_rate"),
        (GOOD.replace("seed: 7", "sed: 7"), "sed", "seed"),
        (GOOD.replace("num_samples: 16", "num_sample: 16"), "data.num_sample", "num_samples"),
    ],
)
def test_unknown_key_names_file_path_and_nearest(
    tmp_path: Path, text: str, key: str, suggestion: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    assert err.value.key == key
    assert err.value.suggestion == suggestion
    assert str(path) in str(err.value)


def test_yaml11_no_is_a_string_for_string_fields(tmp_path: Path) -> None:
    recipe = load_recipe(write(tmp_path, GOOD), ["train.save_strategy=no"])
    assert recipe.train["save_strategy"] == "no"


def test_wrong_type_in_trainer_field(tmp_path: Path) -> None:
    with pytest.raises(RecipeError) as err:
        load_recipe(write(tmp_path, GOOD + "  per_device_train_batch_size: many\n"))
    assert err.value.key == "train.per_device_train_batch_size"


def test_wrong_type_in_schema_field(tmp_path: Path) -> None:
    with pytest.raises(RecipeError) as err:
        load_recipe(write(tmp_path, GOOD.replace("seed: 7", "seed: seven")))
    assert err.value.key == "seed"


def test_dpo_fields_only_valid_for_dpo(tmp_path: Path) -> None:
    with pytest.raises(RecipeError) as err:
        load_recipe(write(tmp_path, GOOD + "  beta: 0.1\n"))
    assert "SFTConfig" in str(err.value)
    recipe = load_recipe(write(tmp_path, "method: dpo\n" + GOOD + "  beta: 0.1\n"))
    assert recipe.train["beta"] == 0.1


def test_cli_bad_recipe_exits_2_without_traceback(tmp_path: Path) -> None:
    from resistkit.cli import app

    path = write(tmp_path, GOOD + "  learnin_rate: 0.1\n")
    result = CliRunner().invoke(app, ["train", str(path)])
    assert result.exit_code == 2
    assert "train.learnin_rate" in result.output and "learning_rate" in result.output
    assert "Traceback" not in result.output


def test_every_shipped_recipe_parses(repo: Path) -> None:
    recipes = sorted((repo / "recipes").rglob("*.yaml"))
    assert recipes, "no recipes shipped"
    from resistkit.experiment import load_experiment, run_experiment

    for path in recipes:
        if "experiment:" in path.read_text():
            # Experiment recipes are also planned (dry run): stages, models, volumes.
            plan = run_experiment(load_experiment(str(path)), dry_run=True)
            assert plan["stages"], path
        elif "pretrain" not in path.parts:
            load_recipe(path)
