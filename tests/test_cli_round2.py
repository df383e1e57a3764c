"""Issue 23, the command line: bad input that ended in a traceback (or was taken silently) now
ends in one line, and what a new user reads at 80 columns has whole words, names and paths."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import test_bad_input as round1
from typer.testing import CliRunner

from resistkit.cli import app

SFT = round1.SFT
NARROW = {"COLUMNS": "80"}

CASES: list[tuple[str, list[str], str]] = [
    ("copy-onto-a-file", ["recipes", "copy", "quickstart", "{tmp}/empty.yaml"],
     "empty.yaml exists; resistkit never overwrites a file"),
    ("copy-onto-a-non-yaml-file", ["recipes", "copy", "quickstart", "{tmp}/notext.jsonl"],
     "exists and is not a directory"),
    ("copy-onto-a-new-bare-name", ["recipes", "copy", "quickstart", "{tmp}/mine"],
     "does not exist: name a new file ending in .yaml"),
    ("copy-under-a-file", ["recipes", "copy", "quickstart", "{tmp}/empty.yaml/x.yaml"],
     "empty.yaml is a file, not a directory"),
    ("copy-unwritable", ["recipes", "copy", "quickstart", "/proc/resistkit-nope/x.yaml"],
     "cannot write /proc/resistkit-nope/x.yaml"),
    ("show-a-directory", ["recipes", "show", "{tmp}"], "is a directory, not a recipe file"),
    ("tiny-heads-do-not-split", ["train", SFT, "--dry-run", "--set",
                                 "model.tiny.num_attention_heads=5"],
     "model.tiny.num_attention_heads: 5 heads must split hidden_size 64"),
    ("tiny-odd-head-width", ["train", SFT, "--dry-run", "--set", "model.tiny.hidden_size=60"],
     "model.tiny.num_attention_heads: 4 heads must split hidden_size 60"),
    ("tiny-kv-heads", ["train", SFT, "--dry-run", "--set", "model.tiny.num_key_value_heads=3"],
     "model.tiny.num_key_value_heads: 3 must divide num_attention_heads 4"),
    ("tiny-zero-width", ["train", SFT, "--dry-run", "--set", "model.tiny.hidden_size=0"],
     "model.tiny.hidden_size"),
    ("device-cuda-without-cuda", ["score", "{tmp}/gens.jsonl", "-s", "compression", "--model",
                                  "builtin:tiny-base", "--device", "cuda"],
     "--device=cuda: "),
    ("device-gpu-index", ["score", "{tmp}/gens.jsonl", "-s", "compression", "--model",
                          "builtin:tiny-base", "--device", "cuda:3"], "use --device=cpu"),
    ("set-empty-key", ["train", SFT, "--set", "=5"],
     "--set: '=5': expected KEY.PATH=VALUE, e.g. --set seed=7"),
    ("set-without-equals-hint", ["train", SFT, "--set", "foo"],
     "--set: 'foo': expected KEY.PATH=VALUE, e.g. --set seed=7"),
    ("set-empty-part", ["train", SFT, "--set", "train..learning_rate=1"],
     "expected KEY.PATH=VALUE"),
]


@pytest.mark.parametrize(("argv", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    argv: list[str], needle: str, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    round1.test_bad_input_is_one_line_exit_2_and_changes_nothing(argv, needle, repo, tmp_path,
                                                                 monkeypatch)


@pytest.mark.parametrize("argv", [
    ["score", "{tmp}/gens.jsonl", "-s", "refusal", "--num-samples", "-3"],
    ["score", "{tmp}/gens.jsonl", "-s", "refusal", "--num-samples", "0"],
    ["data", "show", "reviews/positive", "-n", "-1"],
], ids=["score-negative", "score-zero", "data-show-negative"])
def test_negative_counts_are_refused_naming_the_option(argv: list[str], tmp_path: Path) -> None:
    round1._write_inputs(tmp_path)
    before = round1._snapshot(tmp_path)
    result = CliRunner().invoke(app, [a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert argv[-2] in result.output  # the option, by name
    assert round1._snapshot(tmp_path) == before


def test_copy_writes_a_file_or_into_a_directory_never_over_one(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    runner = CliRunner()
    for where, made in (("mine", "mine/quickstart.yaml"), ("new/", "new/quickstart.yaml"),
                        ("a/b/run.yaml", "a/b/run.yaml")):
        result = runner.invoke(app, ["recipes", "copy", "quickstart", str(tmp_path / where)
                                     + ("/" if where.endswith("/") else "")])
        assert result.exit_code == 0, result.output
        assert (tmp_path / made).read_text().startswith("# The offline quickstart")
    again = runner.invoke(app, ["recipes", "copy", "quickstart", str(tmp_path / "mine")])
    assert again.exit_code == 2 and "never overwrites" in again.output


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_output_to_a_full_device_is_one_line() -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "resistkit", "recipes", "show",
                               "quickstart"], stdout=full, stderr=subprocess.PIPE, text=True,
                              check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: cannot write the output: No space left on device"]


def _narrow(*argv: str) -> list[str]:
    result = CliRunner().invoke(app, list(argv), env=NARROW)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    return lines


def test_recipes_list_at_80_columns_has_whole_names_and_sentences() -> None:
    from resistkit.catalog import list_recipes

    lines = _narrow("recipes", "list")
    text = " ".join(line.strip() for line in lines)
    for info in list_recipes():
        assert any(line.startswith(info.name + " ") for line in lines), info.name
        assert info.purpose[-1] in ".!?" and info.purpose in text, info.purpose
    assert "SmolLM2-135M-Instruct" in "\n".join(lines)
    assert len(lines) < 100
    grpo = next(i for i in list_recipes() if i.name == "tiny/grpo").purpose
    assert grpo.endswith("as Setting II's inverse step would.")  # the sentence, not line 1


def test_models_list_at_80_columns_keeps_paths_whole() -> None:
    from resistkit.models import builtin

    lines = _narrow("models", "list")
    assert f"  in {builtin.TINY_BASE_DIR}" in lines
    for model in builtin.BUILTIN_MODELS:
        assert any(line.startswith(model.name + " ") for line in lines), model.name


def test_data_list_at_80_columns_has_whole_names_and_each_sets_own_size() -> None:
    import json

    from resistkit.data.registry import builtin_names

    lines = _narrow("data", "list")
    for name in builtin_names():
        assert any(line.split()[:1] == [name] for line in lines if line.strip()), name
    items = {i["name"]: i for i in json.loads(
        CliRunner().invoke(app, ["data", "list", "--json"]).output)}
    reviews = [items[f"reviews/{n}"] for n in ("positive", "negative", "all")]
    assert len({i["bytes"] for i in reviews}) == 3  # each set's own rows, not the shared file
    assert reviews[2]["bytes"] > reviews[0]["bytes"] + reviews[1]["bytes"] * 0.9
    assert len({i["file_bytes"] for i in reviews}) == 1  # the file they share


def test_help_reads_like_typers_own_at_80_columns() -> None:
    lines = _narrow("run", "--help")
    text = "\n".join(lines)
    for typed in ("{recipe}", "<bool>", "<str>", "<list[str]>", "<int range>"):
        assert typed not in text, typed
    assert "Usage: resistkit run [OPTIONS] RECIPE" in text
    assert "INTEGER RANGE [x>=1]" in text and " TEXT " in text
    # The second paragraph wraps at the width, not at the docstring's line breaks.
    assert "checkpoint; a changed setting re-runs" in text
    for argv in (["--help"], ["recipes", "copy", "--help"], ["score", "--help"]):
        other = "\n".join(_narrow(*argv))
        assert "<bool>" not in other and "<str>" not in other and "{" not in other.split(
            "Usage:")[1].splitlines()[0]
