"""Bad input found late in round 2: an empty or record-less data file, LoRA targets that match
no module. Each ends in one line naming the file or key, exit 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from resistkit.cli import app


def _train(out: Path, *sets: str):
    argv = ["train", "tiny/sft", "-o", str(out), "--set", "data.num_samples=16",
            "--set", "save_at_samples=[8]",
            "--set", "train.max_steps=1"]
    return CliRunner().invoke(app, argv + [a for s in sets for a in ("--set", s)])


@pytest.mark.parametrize(("text", "said"), [("", "is empty"), ("[]", "holds no records"),
                                            ("  \n", "is empty")])
def test_an_empty_data_file_says_so(tmp_path: Path, text: str, said: str) -> None:
    data = tmp_path / "d.json"
    data.write_text(text)
    result = _train(tmp_path / "out", f"data.dataset={data}")
    assert result.exit_code == 2, result.output
    assert f"{data} {said}" in result.output
    assert "Traceback" not in result.output


def test_lora_targets_matching_nothing_name_the_key_and_the_layers(tmp_path: Path) -> None:
    result = _train(tmp_path / "out", "lora={r: 4, target_modules: [q_prj]}")
    assert result.exit_code == 2, result.output
    assert "lora.target_modules: 'q_prj' matches no module" in result.output
    assert "did you mean 'q_proj'" in result.output
    assert "Traceback" not in result.output
