"""Bad input, as a researcher would type it: every kind is refused in one line that names what
is wrong, with exit status 2, no traceback, before any work, and nothing on disk changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from resistkit.cli import app

SFT = "{repo}/recipes/tiny/sft.yaml"
S2 = "{repo}/recipes/tiny/setting2.yaml"
S3 = "{repo}/recipes/tiny/setting3.yaml"
PRE = "{repo}/recipes/pretrain/micro.yaml"
GRPO = "{repo}/recipes/tiny/grpo.yaml"
BASE = "--set", "model.name_or_path=builtin:tiny-base"

# (id, command line, text the one error line must contain)
CASES: list[tuple[str, list[str], str]] = [
    # --- stage recipes (`train`) ---------------------------------------------------------
    ("unknown-top-key", ["train", SFT, "--set", "sed=7"],
     "sed: unknown key (did you mean 'seed'?)"),
    ("unknown-trl-field", ["train", SFT, "--set", "train.learnin_rate=0.1"],
     "not a field of trl.SFTConfig (did you mean 'learning_rate'?)"),
    ("wrong-type", ["train", SFT, "--set", "train.per_device_train_batch_size=many"],
     "train.per_device_train_batch_size"),
    ("negative-batch", ["train", SFT, "--set", "train.per_device_train_batch_size=-1"],
     "train.per_device_train_batch_size: must be positive, got -1"),
    ("zero-epochs", ["train", SFT, "--set", "train.num_train_epochs=0"],
     "train.num_train_epochs: must be positive"),
    ("zero-lr", ["train", SFT, "--set", "train.learning_rate=0"], "train.learning_rate"),
    ("zero-max-steps", ["train", SFT, "--set", "train.max_steps=0"], "train.max_steps"),
    ("tiny-max-length", ["train", SFT, "--set", "train.max_length=1"], "train.max_length"),
    ("negative-save-at", ["train", SFT, "--set", "save_at_samples=[-8, 32]"],
     "save_at_samples: [-8] is not positive"),
    ("unordered-save-at", ["train", SFT, "--set", "save_at_samples=[32, 16]"],
     "must be strictly increasing"),
    ("raw-yaml-value", ["train", SFT, "--set", "save_at_samples=[1,2"],
     "--set: save_at_samples: value '[1,2' is not valid YAML"),
    ("set-without-equals", ["train", SFT, "--set", "learning_rate"], "expected KEY.PATH=VALUE"),
    ("reserved-key", ["train", SFT, "--set", "train.output_dir=x"], "train.output_dir"),
    ("unknown-method", ["train", SFT, "--set", "method=ppo"], "method: unknown method 'ppo'"),
    ("template-without-text", ["train", SFT, "--set", "prompt_format=template"],
     "prompt_template: required"),
    ("bad-dtype", ["train", SFT, "--set", "model.dtype=fp8"], "model.dtype"),
    ("lora-rank-zero", ["train", SFT, "--set", "lora={r: 0}"], "lora.r"),
    ("lora-unknown-target", ["train", SFT, *BASE, "--set", "lora={target_modules: [nope_proj]}"],
     "lora.target_modules: ['nope_proj'] not in the model"),
    ("reward-on-sft", ["train", SFT, "--set", "reward={scorer: refusal}"],
     "reward: method 'sft' learns from its data, not from a reward"),
    ("grpo-without-reward", ["train", GRPO, "--set", "reward=null"],
     "reward: required by method 'grpo'"),
    ("reward-scorer-typo", ["train", GRPO, "--set", "reward.scorer=sentiment-lexikon"],
     "reward.scorer: unknown scorer 'sentiment-lexikon'"),
    ("reward-column-unknown", ["train", GRPO, "--set", "reward.column=nope"],
     "reward.column: 'nope' is not a column of sentiment-lexicon"),
    ("reward-option-unused", ["train", GRPO, "--set", "reward.options={classifier: x}"],
     "reward.options: option(s) classifier not used"),
    ("grpo-uneven-groups", ["train", GRPO, "--set", "train.num_generations=3"],
     "train.num_generations: 3 does not divide the 8 completions"),
    ("kto-batch-of-one", ["train", "{repo}/recipes/tiny/kto.yaml", "--set",
                          "train.per_device_train_batch_size=1"], "KTO estimates its KL"),
    ("kto-on-plain-text", ["train", "{repo}/recipes/tiny/kto.yaml", "--set",
                           "data.dataset=builtin:pretrain"],
     "cannot be trained on with method kto: it needs 'prompt' and 'completion'"),
    ("simpo-unknown-field", ["train", "{repo}/recipes/tiny/simpo.yaml", "--set",
                             "train.simpo_gama=1"], "not a field of trl.CPOConfig"),
    ("recipe-is-a-directory", ["train", "{tmp}"], "is a directory"),
    ("recipe-missing", ["train", "{tmp}/nope.yaml"], "no such file, and no packaged recipe"),
    ("recipe-empty", ["train", "{tmp}/empty.yaml"], "the file is empty"),
    ("recipe-a-list", ["train", "{tmp}/list.yaml"], "must be a mapping"),
    ("recipe-bad-yaml", ["train", "{tmp}/bad.yaml"], "not valid YAML"),
    ("dataset-typo", ["train", SFT, "--set", "data.dataset=builtin:reviews/postive"],
     "Did you mean 'builtin:reviews/positive'"),
    ("dataset-file-missing", ["train", SFT, "--set", "data.dataset=json:{tmp}/none.jsonl"],
     "does not exist"),
    ("dataset-without-text", ["train", SFT, "--set", "data.dataset=json:{tmp}/notext.jsonl"],
     "it needs a 'text' column, or 'prompt' and 'completion' columns"),
    ("dataset-empty-rows", ["train", SFT, "--set", "data.dataset=json:{tmp}/blank.jsonl",
                            "--set", "save_at_samples=[4]"], "have an empty 'text'"),
    ("too-few-rows", ["train", SFT, "--set", "data.num_samples=999999"],
     "cannot take num_samples=999999"),
    ("unknown-split", ["train", SFT, "--set", "data.split=validation"], "no split 'validation'"),
    ("hub-id-missing", ["train", SFT, "--set", "model.name_or_path=nobody/no-such-model"],
     "'nobody/no-such-model'"),
    ("model-dir-missing", ["train", SFT, "--set", "model.name_or_path={tmp}/no/model"],
     "no such directory"),
    ("prompts-fill-max-length", ["train", SFT, *BASE, "--set", "train.max_length=2"],
     "would drop every row"),
    ("output-is-a-file", ["train", SFT, "-o", "{tmp}/empty.yaml"], "is a file"),
    ("save-at-beyond-rows", ["train", SFT, "--set", "data.num_samples=32", "--set",
                             "save_at_samples=[64]"], "exceeds the 32 training rows"),
    ("data-files-on-builtin", ["train", SFT, "--set", "data.data_files=x.json"],
     "data_files only applies to hf"),
    ("greedy-many-samples", ["train", SFT, "--set", "generate.do_sample=false", "--set",
                             "generate.num_return_sequences=2"], "generate.num_return_sequences"),
    ("unknown-accelerate-config", ["train", SFT, "--accelerate-config", "nope"],
     "neither a file nor a shipped config"),
    # --- experiment recipes (`run`) ------------------------------------------------------
    ("scorer-typo", ["run", S2, "--set", "eval.scorers=[sentiment-lexikon]"],
     "did you mean 'sentiment-lexicon'"),
    ("metric-unknown", ["run", S2, "--set", "eval.metric=nosuchmetric"],
     "eval.metric: 'nosuchmetric' is not a column"),
    ("no-scorers", ["run", S2, "--set", "eval.scorers=[]"], "eval.scorers: is empty"),
    ("inverse-reward-on-sft", ["run", S2, "--set", "setting2.inverse_reward={scorer: refusal}"],
     "setting2.inverse_reward: method 'sft' learns from its data"),
    ("inverse-grpo-no-reward", ["run", S2, "--set", "setting2.inverse_method=grpo", "--set",
                                "eval.scorers=[]", "--set", "eval.prompts=null", "--set",
                                "eval.compression=[{dataset: builtin:reviews/positive}, "
                                "{dataset: builtin:reviews/negative}]", "--set", "eval.margin={}"],
     "setting2.inverse_reward: required"),
    ("inverse-kto-text-sets", ["run", S2, "--set", "setting2.inverse_method=kto", "--set",
                               "setting2.negative={dataset: builtin:pretrain}"],
     "setting2.negative"),
    ("margin-unknown-set", ["run", S2, "--set", "eval.margin={plus: builtin:reviews/postive:"
                            "heldout}"], "eval.margin.plus: 'builtin:reviews/postive:heldout' "
                            "names no compression set"),
    ("margin-same-set", ["run", S2, "--set", "eval.compression=[{dataset: builtin:reviews/"
                         "positive, split: heldout}]", "--set", "eval.margin={plus: align, "
                         "minus: align}"], "eval.margin"),
    ("margin-not-metric", ["run", S2, "--set", "eval.scorers=[]", "--set", "eval.prompts=null",
                           "--set", "eval.compression=[{dataset: builtin:reviews/positive}, "
                           "{dataset: builtin:reviews/negative}]", "--set", "eval.margin={}",
                           "--set", "eval.metric=sentiment"], "eval.metric: 'sentiment' is not"),
    ("scorers-without-prompts", ["run", S2, "--set", "eval.prompts=null"],
     "eval.prompts: required"),
    ("setting1-no-scorers", ["run", "{repo}/recipes/tiny/setting1.yaml", "--set",
                             "eval.scorers=[]", "--set", "eval.margin={}"], "eval.scorers"),
    ("kl-threshold-zero", ["run", S2, "--set", "eval.kl.threshold=0"], "eval.kl.threshold"),
    ("kl-dataset-typo", ["run", S2, "--set", "eval.kl.dataset=builtin:reviews/al"],
     "Did you mean 'builtin:reviews/all'"),
    ("kl-too-many", ["run", S2, "--set", "eval.kl.num_samples=100000"], "eval.kl"),
    ("scorer-twice", ["run", S2, "--set", "eval.scorers=[refusal, refusal]"], "twice"),
    ("q1-empty", ["run", S2, "--set", "setting2.q1=[]"], "setting2.q1: is empty"),
    ("q1-negative", ["run", S2, "--set", "setting2.q1=[-16, 16]"],
     "setting2.q1: [-16] is not >= 0"),
    ("q2-unordered", ["run", S2, "--set", "setting2.q2=[32, 16]"], "strictly increasing"),
    ("q2-negative", ["run", S2, "--set", "setting2.q2=[-1, 16]"], "setting2.q2"),
    ("seeds-empty", ["run", S2, "--set", "seeds=[]"], "seeds: is empty"),
    ("seeds-repeated", ["run", S2, "--set", "seeds=[42, 42]"], "repeats a seed"),
    ("run-negative-batch", ["run", S2, "--set", "train.per_device_train_batch_size=-1"],
     "must be positive"),
    ("inverse-method-unknown", ["run", S2, "--set", "setting2.inverse_method=ppo"],
     "setting2.inverse_method"),
    ("experiment-unknown", ["run", S2, "--set", "experiment=setting4"], "experiment"),
    ("positive-set-unknown", ["run", S2, "--set", "setting2.positive.dataset=builtin:nope"],
     "setting2.positive: unknown built-in dataset"),
    ("q1-beyond-data", ["run", S2, "--set", "setting2.q1=[100000]"], "setting2.positive"),
    ("prompts-without-prompt", ["run", S2, "--set", "eval.prompts.dataset=builtin:pretrain"],
     "eval.prompts: dataset 'builtin:pretrain' has no 'prompt' column"),
    ("prompts-too-many", ["run", S2, "--set", "eval.prompts.num_samples=100000"],
     "eval.prompts"),
    ("compression-twice", ["run", S2, "--set", "eval.compression=[{dataset: builtin:reviews/all, "
                           "split: heldout}, {dataset: builtin:reviews/all, split: heldout}]"],
     "measured twice"),
    ("compression-no-text", ["run", S2, "--set", "eval.compression=[{dataset: "
                             "builtin:safety/prompts, split: heldout}]"], "none of the text"),
    ("role-unknown", ["run", S2, "--set", "eval.compression=[{dataset: builtin:pretrain, role: "
                      "bogus}]"], "eval.compression.0.role"),
    ("role-twice", ["run", S2, "--set", "eval.compression=[{dataset: builtin:pretrain}, "
                    "{dataset: builtin:pretrain/wiki, role: pretrain}]"], "is already the role"),
    ("option-unused", ["run", S2, "--set", "eval.scorer_options={classifier: x}"],
     "eval.scorer_options: option(s) classifier not used"),
    ("scorer-model-missing", ["run", S2, "--set", "eval.scorers=[sentiment-classifier]", "--set",
                              "eval.scorer_options={classifier: nobody/no-such-model}"],
     "eval.scorer_options.classifier"),
    ("untrained-base", ["run", S2, "--set", "model.name_or_path=tiny"], "no baseline"),
    ("launch-config-unknown", ["run", S2, "--accelerate-config", "nope"],
     "launch.accelerate_config"),
    ("run-output-is-a-file", ["run", S2, "-o", "{tmp}/empty.yaml"], "is a file"),
    ("control-without-size", ["run", S2, "--set",
                              "setting2.control={dataset: builtin:reviews/all}"],
     "setting2.control.num_samples: required"),
    ("zero-temperature", ["run", S2, "--set", "eval.generation.temperature=0"], "temperature"),
    ("setting3-no-models", ["run", S3, "--set", "setting3.models=[]"], "setting3.models"),
    ("setting3-same-label", ["run", S3, "--set", "setting3.models=[{label: a, model: "
                             "{name_or_path: builtin:tiny-base}}, {label: a, model: "
                             "{name_or_path: builtin:tiny-base}}]"],
     "must be non-empty and unique"),
    ("run-dry-run-still-checks", ["run", S2, "--dry-run", "--set", "seeds=[1, 1]"], "repeats"),
    # --- other commands ------------------------------------------------------------------
    ("report-not-a-run", ["report", "{tmp}"], "not a resistkit run directory"),
    ("report-missing", ["report", "{tmp}/nope"], "not a resistkit run directory"),
    ("score-input-missing", ["score", "{tmp}/none.jsonl", "-s", "refusal"], "does not exist"),
    ("score-unknown-scorer", ["score", "{tmp}/gens.jsonl", "-s", "nosuch"], "unknown scorer"),
    ("score-option-unused", ["score", "{tmp}/gens.jsonl", "-s", "refusal", "--classifier", "x"],
     "not used by the selected scorer"),
    ("score-onto-input", ["score", "{tmp}/gens.jsonl", "-s", "refusal", "-o", "{tmp}/gens.jsonl"],
     "is the input file"),
    ("score-output-a-directory", ["score", "{tmp}/gens.jsonl", "-s", "refusal", "-o", "{tmp}"],
     "is a directory"),
    ("score-not-utf8", ["score", "{tmp}/latin1.jsonl", "-s", "refusal"], "latin1.jsonl:2"),
    ("score-preference-data", ["score", "{tmp}/pref.jsonl", "-s", "refusal"],
     "--response-column chosen"),
    ("score-model-missing", ["score", "{tmp}/gens.jsonl", "-s", "compression", "--model",
                             "nobody/no-such-model"], "'nobody/no-such-model'"),
    ("score-model-absent", ["score", "{tmp}/gens.jsonl", "-s", "compression"],
     "compression needs a causal LM"),
    ("score-bad-dtype", ["score", "{tmp}/gens.jsonl", "-s", "compression", "--model",
                         "builtin:tiny-base", "--dtype", "fp8"], "unknown dtype 'fp8'"),
    ("score-hub-dataset", ["score", "hf:nobody/none", "-s", "refusal"], "'hf:nobody/none'"),
    ("generate-untrained", ["generate", SFT], "'tiny' is untrained"),
    ("generate-model-missing", ["generate", SFT, "--model", "{tmp}/no/model"],
     "no such directory"),
    ("generate-output-a-directory", ["generate", SFT, "--model", "builtin:tiny-base", "-o",
                                     "{tmp}"], "is a directory"),
    ("generate-package-missing", ["generate", SFT, "--model", "smollm2-135m"],
     "run `resistkit models download smollm2-135m` first"),
    ("inverse-bad-save-at", ["inverse", "builtin:tiny-base", "--save-at", "a,b"],
     "--save-at 'a,b'"),
    ("pretrain-unknown-key", ["pretrain", PRE, "--set", "max_tokenz=1"],
     "did you mean 'max_tokens'"),
    ("pretrain-unordered-saves", ["pretrain", PRE, "--set", "save_at_tokens=[512, 256]"],
     "save_at_tokens"),
    ("data-show-unknown", ["data", "show", "builtin:nope"], "unknown built-in dataset"),
    ("judge-evaluate-missing", ["judge", "evaluate", "nobody/no-such-model"],
     "'nobody/no-such-model'"),
]


def _write_inputs(tmp: Path) -> None:
    (tmp / "empty.yaml").write_text("")
    (tmp / "list.yaml").write_text("- a\n- b\n")
    (tmp / "bad.yaml").write_text("seed: [1, 2\n")
    (tmp / "notext.jsonl").write_text("".join(json.dumps({"foo": f"x{i}"}) + "\n"
                                              for i in range(200)))
    (tmp / "blank.jsonl").write_text("".join(json.dumps({"text": "" if i % 3 else "a b c"}) + "\n"
                                             for i in range(12)))
    (tmp / "gens.jsonl").write_text("".join(json.dumps({"prompt": "The film", "response": r})
                                            + "\n" for r in (" was fine.", " was dull.")))
    (tmp / "latin1.jsonl").write_bytes(b'{"response": "ok"}\n{"response": "caf\xe9"}\n')
    (tmp / "pref.jsonl").write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"})
                                    + "\n")


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


def test_there_are_at_least_sixty_kinds() -> None:
    assert len(CASES) >= 60 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize(("argv", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    argv: list[str], needle: str, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from resistkit.models import builtin

    work = tmp_path / "work"
    work.mkdir()
    _write_inputs(work)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # relative defaults (runs/...) would land here
    monkeypatch.setenv("RESISTKIT_CACHE", str(tmp_path / "cache"))  # digests may be cached

    monkeypatch.setattr(builtin, "SMOLLM2_PACKAGE", "no-such-package")  # SmolLM2 not installed here
    args = [a.replace("{repo}", str(repo)).replace("{tmp}", str(work)) for a in argv]
    before = {"work": _snapshot(work), "cwd": _snapshot(cwd)}
    result = CliRunner().invoke(app, args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    # `run` says what it starts on before checking the inputs (its first line comes at once);
    # nothing else is printed before the one error line.
    if lines and lines[0].startswith("resistkit run ") and lines[0].endswith("checking inputs"):
        lines = lines[1:]
        if lines and lines[0].startswith("  ") and " seeds [" in lines[0]:
            lines = lines[1:]  # the plan's one-line summary, when the recipe itself loaded
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert needle in lines[0], lines[0]
    assert {"work": _snapshot(work), "cwd": _snapshot(cwd)} == before
