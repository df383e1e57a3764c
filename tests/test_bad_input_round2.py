"""Bad input, round 2: numbers no run can mean, and commands that ended in a traceback; the
same promise as test_bad_input (one line naming what is wrong, exit 2, nothing changed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import test_bad_input as round1

SFT, S2 = round1.SFT, round1.S2

CASES: list[tuple[str, list[str], str]] = [
    ("lr-nan", ["train", SFT, "--set", "train.learning_rate=.nan"],
     "train.learning_rate: must be a finite number, got nan"),
    ("lr-inf", ["train", SFT, "--set", "train.learning_rate=.inf"],
     "train.learning_rate: must be a finite number"),
    ("lr-1e400", ["train", SFT, "--set", "train.learning_rate=1e400"],
     "train.learning_rate: must be a finite number"),
    ("lr-absurd", ["train", SFT, "--set", "train.learning_rate=1000"],
     "train.learning_rate: 1000 is past any real run"),
    ("weight-decay-nan", ["train", SFT, "--set", "train.weight_decay=.nan"],
     "train.weight_decay: must be a finite number"),
    ("batch-1e20", ["train", SFT, "--set",
                    "train.per_device_train_batch_size=100000000000000000000"],
     "train.per_device_train_batch_size: 100000000000000000000 is past any real run"),
    ("max-length-absurd", ["train", SFT, "--set", "train.max_length=99999999999"],
     "train.max_length: must be from 2 to"),
    ("temperature-inf", ["train", SFT, "--set", "generate.temperature=.inf"],
     "generate.temperature: Input should be a finite number"),
    ("run-temperature-inf", ["run", S2, "--set", "eval.generation.temperature=.inf"],
     "eval.generation.temperature"),
    ("run-temperature-absurd", ["run", S2, "--set", "eval.generation.temperature=1e6"],
     "eval.generation.temperature: 1000000.0 is past any real run"),
    ("run-max-new-tokens-absurd", ["run", S2, "--set",
                                   "eval.generation.max_new_tokens=1000000000"],
     "eval.generation.max_new_tokens"),
    ("run-lr-nan", ["run", S2, "--set", "train.learning_rate=.nan"],
     "train.learning_rate: must be a finite number"),
    ("inverse-lr-inf", ["run", S2, "--set", "setting2.inverse_train={learning_rate: .inf}"],
     "setting2.inverse_train.learning_rate: must be a finite number"),
    ("lora-dropout-nan", ["train", SFT, "--set", "lora={lora_dropout: .nan}"],
     "lora.lora_dropout"),
]


@pytest.mark.parametrize(("argv", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    argv: list[str], needle: str, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    round1.test_bad_input_is_one_line_exit_2_and_changes_nothing(argv, needle, repo, tmp_path,
                                                                 monkeypatch)
