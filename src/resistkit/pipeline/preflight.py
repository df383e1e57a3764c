"""The whole experiment's inputs, checked before its first stage runs (and by ``--dry-run``).

Every data set loads with the columns and rows its stages need (the largest Q1, Q2, control
volume, slice, eval ``num_samples``), training sets hold no empty rows and prompts that fit
``max_length``; every base model resolves and its config loads; LoRA targets exist; every
scorer's model resolves (a built-in judge is either built or buildable here); the run
directory is not a file. A failure is one ``RecipeError`` naming the recipe file and key, and
nothing has been written; notes worth knowing come back for the plan to show.

A dry run plans recipes whose inputs are not on this machine (hub models and data sets without
the hub, directories another run has not made yet): what only those inputs could confirm
becomes a note ("cannot be checked here") instead of an error. A real run refuses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from resistkit.errors import RecipeError, ResistkitError
from resistkit.pipeline.schema import ExperimentRecipe
from resistkit.training.methods import get_method
from resistkit.training.preflight import (
    check_lora,
    check_model,
    check_training_data,
    default_max_length,
    load_spec,
    rekey,
)


def preflight(exp: ExperimentRecipe, source: str, *, dry_run: bool = False) -> list[str]:
    """Check every input of ``exp``; return notes (warnings), raise on the first problem."""
    out = Path(exp.output_dir)
    if out.exists() and not out.is_dir():
        raise RecipeError(source, "output_dir", f"{out} is a file; give a directory")
    notes: list[str] = []
    lenient = _MissingInputs(dry_run, notes)
    for key, spec in _bases(exp):
        config = lenient.run(key, spec.name_or_path, check_model, spec, key, source)
        if exp.lora is not None:
            check_lora(exp.lora, config, source)
    tokenizer = lenient.run("model", exp.model.name_or_path, _tokenizer, exp, source)
    max_length = exp.train.get("max_length", default_max_length("sft"))
    for key, spec, rows, method in _training_sets(exp):
        notes += lenient.run(key, spec.dataset, check_training_data, spec, key, source,
                         method=method, rows=rows, seed=exp.seeds[0], tokenizer=tokenizer,
                         # Online RL samples its completions: no prompt is dropped for length.
                         max_length=None if get_method(method).reward else max_length,
                         prompt_format=exp.prompt_format,
                         template=exp.prompt_template) or []
    lenient.run("setting2", "", _check_pair_sets, exp, source)
    lenient.run("eval", "", _check_eval_sets, exp, source)
    lenient.run("eval.scorer_options", "", _check_scorer_models, exp, source)
    return notes


class _MissingInputs:
    """In a dry run, a check that fails only because an input is not on this machine becomes a
    note; anything else (and everything in a real run) raises."""

    def __init__(self, dry_run: bool, notes: list[str]) -> None:
        self.dry_run, self.notes = dry_run, notes

    def run(self, key: str, name: str, check: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return check(*args, **kwargs)
        except ResistkitError as err:
            if not self.dry_run or not err.missing_input:
                raise
            self.notes.append(f"{key}: cannot be checked here ({err}); a real run needs it")
            return None



def _bases(exp: ExperimentRecipe) -> list[tuple[str, Any]]:
    if exp.setting3 is not None:
        return [(f"setting3.models.{i}.model", m.model) for i, m in enumerate(exp.setting3.models)]
    return [("model", exp.model)]


def _tokenizer(exp: ExperimentRecipe, source: str) -> Any:
    from resistkit.models import spec_tokenizer

    key, spec = _bases(exp)[0]
    try:
        return spec_tokenizer(spec)
    except ResistkitError as err:
        raise rekey(err, source, key) from None


def _training_sets(exp: ExperimentRecipe) -> list[tuple[str, Any, int, str]]:
    """(recipe key, data spec, rows needed, method) of every training data set."""
    if exp.setting1 is not None:
        return [("setting1.data", exp.setting1.data, max(exp.setting1.slices), "sft")]
    s2 = exp.setting2
    assert s2 is not None
    first, second = ("negative", "positive") if s2.reverse else ("positive", "negative")
    sets = [(f"setting2.{first}", getattr(s2, first), max(s2.q1), "sft")]
    q2 = max(s2.q2)
    method = get_method(s2.inverse_method)
    if q2 > 0 and method.setting2_data == "prompts":  # GRPO samples the inverse set's prompts
        fields = {**exp.train, **s2.inverse_train}
        sets.append((f"setting2.{second}", getattr(s2, second), method.rows_for(q2, fields),
                     method.name))
    elif q2 > 0:
        sets.append((f"setting2.{second}", getattr(s2, second), q2, "sft"))
    if s2.control is not None:
        sets.append(("setting2.control", s2.control, s2.control.num_samples or 0, "sft"))
    return sets


def _check_pair_sets(exp: ExperimentRecipe, source: str) -> None:
    """A preference inverse step (DPO, SimPO, ORPO, KTO) pairs both sets' completions: both
    need prompt/completion rows, q2 of them (KTO: half each)."""
    s2 = exp.setting2
    if s2 is None or max(s2.q2) == 0:
        return
    kind = get_method(s2.inverse_method).setting2_data
    if kind not in ("pairs", "unpaired"):
        return
    rows = -(-max(s2.q2) // 2) if kind == "unpaired" else max(s2.q2)
    for name in ("positive", "negative"):
        load_spec(getattr(s2, name), f"setting2.{name}", source, rows=rows, seed=exp.seeds[0],
                  fmt="prompt_completion")


def _check_eval_sets(exp: ExperimentRecipe, source: str) -> list[str]:
    from resistkit.scoring.io import RESPONSE_COLUMNS

    prompt_sets = [("eval.prompts", exp.eval.prompts)] if exp.eval.prompts is not None else []
    if exp.setting1 is not None and exp.setting1.responses is not None:
        prompt_sets.append(("setting1.responses", exp.setting1.responses))
    prompt_sets += [(f"eval.prompt_sets.{i}", ps) for i, ps in enumerate(exp.eval.prompt_sets)]
    for key, spec in prompt_sets:
        ds = load_spec(spec, key, source, rows=spec.num_samples, seed=0)
        if "prompt" not in ds.column_names:
            raise RecipeError(source, key, f"dataset {spec.dataset!r} has no 'prompt' column "
                              f"to generate from (columns: {', '.join(ds.column_names)})")
        empty = sum(1 for p in ds["prompt"] if not isinstance(p, str) or not p.strip())
        if empty == len(ds):
            raise RecipeError(source, key, f"every prompt of {spec.dataset!r} is empty")
    measured = [(f"eval.compression.{i}", spec) for i, spec in enumerate(exp.eval.compression)]
    if exp.eval.kl is not None:
        measured.append(("eval.kl", exp.eval.kl))
    for key, spec in measured:
        ds = load_spec(spec, key, source, rows=spec.num_samples, seed=spec.seed or 0)
        column = getattr(spec, "column", None)
        if column is not None:
            if column not in ds.column_names:
                raise RecipeError(source, f"{key}.column", f"dataset {spec.dataset!r} has no "
                                  f"column {column!r} (columns: {', '.join(ds.column_names)})")
        elif "chosen" in ds.column_names and "rejected" in ds.column_names:
            raise RecipeError(source, key, f"dataset {spec.dataset!r} is preference data: say "
                              "which side to measure with column: chosen or column: rejected "
                              "(two sets, one per side, give a margin)")
        elif not any(c in ds.column_names for c in RESPONSE_COLUMNS):
            raise RecipeError(source, key, f"dataset {spec.dataset!r} has none of the text "
                              f"columns {', '.join(RESPONSE_COLUMNS)} to measure")
        if len(ds) == 0:
            raise RecipeError(source, key, f"dataset {spec.dataset!r} has no rows to measure")
    return []


def _check_scorer_models(exp: ExperimentRecipe, source: str) -> None:
    """Models named in ``eval.scorer_options`` resolve here, and so does every judge a scorer
    of ``eval.scorers`` or of a prompt set (``eval.prompt_sets``) loads by default (a built-in
    judge may be built)."""
    from resistkit.models import load_config, resolve_model
    from resistkit.pipeline.prompt_sets import prompt_set_scorers
    from resistkit.scoring import get_scorer

    given = exp.eval.scorer_options
    # option -> (recipe key to blame, model, whether it names a judge, what the model is); each
    # option once, from its first user, as every scorer that declares it loads the same model.
    checks: dict[str, tuple[str, Any, bool, str]] = {
        o: (f"eval.scorer_options.{o}", given.get(o), False, "")
        for o in ("reward_model", "cost_model", "model", "ref_model")}
    users = [("eval.scorers", exp.eval.scorers)] + [
        (f"eval.prompt_sets.{i}.scorers", prompt_set_scorers(ps, exp.eval.scorers, given)[0])
        for i, ps in enumerate(exp.eval.prompt_sets)]
    for key, scorers in users:
        for j, scorer in enumerate(scorers):
            spec = get_scorer(scorer)
            for option in spec.judge_options:
                if option in checks and checks[option][2]:
                    continue
                if given.get(option) or key == "eval.scorers":
                    checks[option] = (f"eval.scorer_options.{option}",
                                      given.get(option) or spec.options.get(option), True, "")
                else:  # the default judge of a prompt set's own scorer: no key names it
                    name = spec.options.get(option)
                    checks[option] = (f"{key}.{j}", name, True,
                                      f"{scorer}'s default judge ({option}: {name}): ")
    for key, name, judge, what in checks.values():
        if not name:
            continue
        try:
            if judge and _buildable_judge(name):
                continue
            load_config(resolve_model(str(name)))
        except ResistkitError as err:
            raise rekey(err, source, key, what) from None


def _buildable_judge(name: str) -> bool:
    """A built-in judge the pipeline can build on first use (its base model is installed)."""
    from resistkit.judge import check_buildable, is_complete, task_for

    task = task_for(name)
    if task is None:
        return False
    if not is_complete(task.directory()):
        check_buildable(task)  # raises, naming the package to install or model to download
    return True
