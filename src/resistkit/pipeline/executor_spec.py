"""The ``executor:`` section of an experiment recipe: how its stages run (sequentially, as
local processes, or as SLURM jobs) and what each SLURM job asks for. Not part of any stage
fingerprint (``pipeline.executor`` runs the stages; ``pipeline.jobs`` is one job)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from resistkit.recipes import Strict


class SlurmResources(Strict):
    """What one stage's SLURM job asks for (every field optional in ``by_kind``)."""

    partition: str | None = Field(None, description="sbatch --partition (default: the "
                                  "cluster's default partition).")
    account: str | None = Field(None, description="sbatch --account.")
    time_min: int | None = Field(None, ge=1, description="Time limit per job, minutes.")
    cpus: int | None = Field(None, ge=1, description="CPUs per job (--cpus-per-task).")
    gpus: int | None = Field(None, ge=0, description="GPUs per job (--gpus-per-node); a "
                             "training stage with more than one runs under `launch:`.")
    mem_gb: float | None = Field(None, gt=0, description="Memory per job, GB (--mem).")
    sbatch: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="More sbatch options, e.g. {qos: high, "
        "constraint: a100}, passed as --KEY=VALUE.")


class SlurmSpec(SlurmResources):
    """Resources of every stage's job, then per stage kind (train, generate, score, eval,
    data) what differs, e.g. ``by_kind: {train: {gpus: 4, time_min: 600}}``."""

    by_kind: dict[Literal["train", "generate", "score", "eval", "data"], SlurmResources] = \
        Field(default_factory=dict, description="Per stage kind, the fields that differ.")

    def sbatch_for(self, kind: str) -> dict[str, Any]:
        """submitit's SlurmExecutor parameters for a stage of this kind."""
        fields = ("partition", "account", "time_min", "cpus", "gpus", "mem_gb")
        merged: dict[str, Any] = {f: getattr(self, f) for f in fields}
        extra = dict(self.sbatch)
        override = self.by_kind.get(kind)  # type: ignore[call-overload]
        if override is not None:
            merged.update({f: getattr(override, f) for f in fields
                           if getattr(override, f) is not None})
            extra.update(override.sbatch)
        out: dict[str, Any] = {"time": merged["time_min"] or 60,
                               "cpus_per_task": merged["cpus"] or 1,
                               "additional_parameters": extra}
        if merged["partition"]:
            out["partition"] = merged["partition"]
        if merged["account"]:
            out["account"] = merged["account"]
        if merged["gpus"]:
            out["gpus_per_node"] = merged["gpus"]
        if merged["mem_gb"]:
            out["mem"] = f"{int(merged['mem_gb'] * 1024)}M"
        return out


class ExecutorSpec(Strict):
    """How the stages run: one after another in this process (``sequential``), as up to
    ``jobs`` processes at once on this machine (``local``), or as SLURM jobs (``slurm``).
    Not part of any stage fingerprint: every executor computes the same stages the same way."""

    kind: Literal["sequential", "local", "slurm"] = Field(
        "sequential", description="sequential | local | slurm (`run --executor`).")
    jobs: int = Field(2, ge=1, le=1024, description="local: stages at once (`run --jobs`).")
    poll_s: float | None = Field(None, gt=0, le=3600, description="Seconds between the "
                                 "driver's looks at the run directory and the queue "
                                 "(default: 1 local, 5 slurm).")
    slurm: SlurmSpec = Field(default_factory=SlurmSpec, description="SLURM job resources.")
