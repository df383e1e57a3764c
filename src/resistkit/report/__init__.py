"""`resistkit report RUN_DIR`: Markdown, PNG figures and a CSV, from the run directory alone.

The plan is rebuilt from the run's resolved ``experiment.yaml`` and every number is read back
from the outputs of the planned stages that match it (``report.collect``), so a report can be
regenerated, or a run directory moved and reported, without the recipe that made it, and it
never mixes in stages of an earlier plan.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from resistkit.files import atomic_write_text, read_json
from resistkit.pipeline import layout
from resistkit.report import files as report_files
from resistkit.report import plots
from resistkit.report.collect import collect_pairs, metric_of, missing_points
from resistkit.report.tables import csv_text, table_section

__all__ = ["write_report"]


def _header(exp: Any, run_dir: Path) -> list[str]:
    """What the numbers come from: model, data, seeds, versions, and how to reproduce them.
    Paths are relative to the run directory (shown by its name): a report is read on other
    machines, where this one's absolute paths mean nothing."""
    env_path = run_dir / layout.ENV_FILE
    env = read_json(env_path) if env_path.exists() else {}
    pk = env.get("packages", {})
    name = run_dir.name
    command = env.get("command")
    if command:
        command = command.replace(str(run_dir.resolve()), name).replace(str(run_dir), name)
    started = f" It was started with `{command}`." if command else ""
    return [f"# resistkit report: {exp.experiment}", "", f"Run directory: `{name}`", "",
            f"Model: {_models(exp)}. Data: {_data(exp)}. Seeds: {exp.seeds}. "
            f"torch {pk.get('torch')}, transformers {pk.get('transformers')}, "
            f"trl {pk.get('trl')}.", "",
            f"Reproduce (from the run directory's parent): `resistkit run "
            f"{name}/{layout.EXPERIMENT_FILE} -o {name}` (the resolved recipe, every default "
            f"written out).{started}", ""]


def _models(exp: Any) -> str:
    from resistkit.errors import ResistkitError
    from resistkit.models import model_identity, resolve_spec

    specs = [(m.label, m.model) for m in exp.setting3.models] if exp.setting3 is not None \
        else [("", exp.model)]
    shown = []
    for label, spec in specs:
        try:
            resolved = resolve_spec(spec)
            identity = model_identity(resolved)
            where = f" (weights {identity})" if resolved.is_local else ""
        except ResistkitError:
            where = " (not on this machine now)"
        shown.append(f"{label + ': ' if label else ''}`{spec.name_or_path}`{where}")
    return "; ".join(shown)


def _data(exp: Any) -> str:
    prompts = exp.eval.prompts
    shown = f", prompts `{prompts.dataset}` ({prompts.split})" if prompts is not None else ""
    if exp.setting1 is not None:
        return f"`{exp.setting1.data.dataset}`{shown}"
    s2 = exp.setting2
    control = f", control `{s2.control.dataset}`" if s2.control is not None else ""
    return f"positive `{s2.positive.dataset}`, negative `{s2.negative.dataset}`{control}{shown}"


def _setting1_section(plan: Any, out: Path) -> tuple[list[str], list[dict]]:
    rows = collect_pairs(plan)
    lines = []
    if rows:
        fig = plots.plot_setting1(rows, out / "resistance.png")
        lines += [f"![resistance]({fig.name})", ""]
    lines += table_section(
        "## Setting I: resistance",
        "Mean training cross-entropy (nats/token) of forward alignment (θk trained on Dl, the "
        "later slice's responses) and inverse alignment (θl trained on Dk). Resistance: "
        "inverse < forward. Paper (Llama2-7B): θ2→θ1 0.1589 vs θ1→θ2 0.2018; θ3→θ1 0.1666 vs "
        "θ1→θ3 0.2346.",
        rows, ["pair", "forward_loss", "inverse_loss", "inverse_minus_forward", "diff_std",
               "seeds", "forward_final_target_loss", "inverse_final_target_loss", "resistance"])
    return lines, rows


def _missing_section(plan: Any) -> list[str]:
    if plan.points:
        missing = missing_points(plan)
    else:
        missing = [r.label for r in plan.pairs if not plan.done(r.stage)]
    if not missing:
        return []
    shown = ", ".join(" ".join(f"{k}={v}" for k, v in m.items() if v != "") for m in missing[:20])
    more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
    return [f"**Not finished yet** ({len(missing)} planned, without a result): {shown}{more}. "
            "`resistkit run` the same recipe again to complete them.", ""]


def write_report(run_dir: str | Path) -> Path:
    """Write ``report.md``, figures and ``results.csv`` into ``RUN_DIR/report/``.

    The report is built in a fresh directory and swapped in whole, so ``report/`` holds exactly
    the files of the current plan: a figure or table of an earlier, larger grid does not
    outlive it. Files in ``report/`` that resistkit did not write (or that were edited since)
    are never deleted or overwritten: the report refuses, naming them.
    """
    from resistkit.pipeline import open_run

    run_dir = Path(run_dir)
    exp, plan = open_run(run_dir)
    final = run_dir / layout.REPORT_DIR
    foreign = report_files.foreign_files(final)
    if foreign:
        from resistkit.errors import RunError

        raise RunError(f"{final / foreign[0]} was not written by resistkit (or was edited "
                       f"since); move it out of {final} and run the report again"
                       + (f" ({len(foreign) - 1} more such file(s))" if len(foreign) > 1
                          else ""))
    out = report_files.fresh_dir(final)
    lines = _header(exp, run_dir)
    if exp.experiment in ("setting2", "setting3"):
        from resistkit.report.rebound import rebound_section

        section, rows = rebound_section(exp, plan, metric_of(exp, plan), out)
    else:
        section, rows = _setting1_section(plan, out)
    lines += section + _missing_section(plan)
    atomic_write_text(out / "results.csv",
                      csv_text(rows))
    lines += ["All numbers: [results.csv](results.csv)."]
    atomic_write_text(out / "report.md", "\n".join(lines) + "\n")
    report_files.swap_in(out, final, plan)
    return final / "report.md"
