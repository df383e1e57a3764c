"""Run a training stage under `accelerate launch` (DDP, DeepSpeed ZeRO-2/3, FSDP).

resistkit has no distributed code of its own: a stage recipe is written to YAML and
``python -m accelerate.commands.launch --config_file CFG --num_processes N -m resistkit train
RECIPE`` runs it, so TRL's trainer sees an ordinary accelerate launch. The five shipped configs
(``ddp``, ``zero2``, ``zero3``, ``zero3_offload``, ``fsdp``) are package data and resolve by name.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from resistkit.errors import RunError

log = logging.getLogger(__name__)

CONFIG_NAMES = ("ddp", "zero2", "zero3", "zero3_offload", "fsdp")

# distributed_type values for which accelerate's launcher runs ONE plain process: on a machine
# without GPUs `MULTI_CPU` expects mpirun and otherwise silently starts a single process.
_SINGLE_PROCESS_TYPES = {"NO", "MULTI_CPU"}


def config_dir() -> Path:
    """The folder of shipped accelerate configs (package ``resistkit.accelerate_configs``)."""
    return Path(str(resources.files("resistkit.accelerate_configs")))


def available_configs() -> list[str]:
    return sorted(p.stem for p in config_dir().glob("*.yaml"))


def resolve_accelerate_config(name_or_path: str | os.PathLike[str]) -> Path:
    """A shipped config by name (``zero3``, ``zero3.yaml``) or an existing YAML file path."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.is_file():
        return path.resolve()
    name = text[: -len(".yaml")] if text.endswith(".yaml") else text
    shipped = config_dir() / f"{name}.yaml"
    if "/" not in name and shipped.is_file():
        return shipped
    raise RunError(
        f"accelerate config '{text}' is neither a file nor a shipped config "
        f"(shipped: {', '.join(available_configs())})"
    )


def read_accelerate_config(name_or_path: str | os.PathLike[str]) -> dict[str, Any]:
    data = yaml.safe_load(resolve_accelerate_config(name_or_path).read_text(encoding="utf-8"))
    return data or {}


def build_launch_command(
    recipe_path: str | os.PathLike[str],
    *,
    accelerate_config: str | os.PathLike[str] = "ddp",
    num_processes: int | None = None,
    overrides: Sequence[str] = (),
    main_process_port: int | None = None,
    launch_args: Sequence[str] = (),
    train_args: Sequence[str] = (),
) -> list[str]:
    """The argv of ``accelerate launch ... -m resistkit train RECIPE --set ...``.

    ``launch_args`` pass through to ``accelerate launch`` (e.g. ``--num_machines 2
    --machine_rank 0 --main_process_ip HOST`` on a cluster); ``train_args`` go to
    ``resistkit train`` (e.g. ``--no-resume``).
    """
    cfg_path = resolve_accelerate_config(accelerate_config)
    cfg = read_accelerate_config(cfg_path)
    procs = int(num_processes if num_processes is not None else cfg.get("num_processes", 1))
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(cfg_path),
           "--num_processes", str(procs)]
    kind = str(cfg.get("distributed_type", "NO")).upper()
    mpirun = bool(cfg.get("mpirun_config")) or "--mpirun_hostfile" in launch_args
    if procs > 1 and kind in _SINGLE_PROCESS_TYPES and not mpirun \
            and "--multi_gpu" not in launch_args:
        # --multi_gpu is accelerate's torchrun path: N processes (gloo without GPUs). Without
        # an mpirun hostfile a MULTI_CPU config would run one process and report success.
        cmd.append("--multi_gpu")
    single_machine = int(cfg.get("num_machines") or 1) == 1 and "--num_machines" not in launch_args
    if main_process_port is not None:
        cmd += ["--main_process_port", str(main_process_port)]
    elif single_machine and "--main_process_port" not in launch_args:
        # 0 = a free port: concurrent runs on one machine do not collide on 29500.
        cmd += ["--main_process_port", "0"]
    cmd += [*launch_args, "-m", "resistkit", "train", str(recipe_path)]
    for item in overrides:
        cmd += ["--set", item]
    return [*cmd, *train_args]


def write_stage_recipe(recipe: Any, path: str | os.PathLike[str]) -> Path:
    """Write a Recipe (pydantic) or a plain mapping as YAML; return the path."""
    from resistkit.files import atomic_write_text
    from resistkit.recipes import dump_recipe

    path = Path(path)
    if isinstance(recipe, Mapping):
        text = yaml.safe_dump(dict(recipe), sort_keys=False)
    else:
        text = dump_recipe(recipe)
    atomic_write_text(path, text)
    return path


def launch_train(
    recipe_path_or_dict: str | os.PathLike[str] | Mapping[str, Any] | Any,
    *,
    env: Mapping[str, str] | None = None,
    **launch: Any,
) -> int:
    """Run ``resistkit train`` under ``accelerate launch``; return the exit status.

    ``launch`` holds the options of ``build_launch_command`` (accelerate_config,
    num_processes, overrides, main_process_port, launch_args, train_args). A recipe given as
    a mapping or a ``Recipe`` is first written to ``<output_dir>/launch_recipe.yaml``, so the
    run directory keeps what was launched.
    """
    if isinstance(recipe_path_or_dict, (str, os.PathLike)):
        recipe_path = Path(recipe_path_or_dict)
    else:
        raw = recipe_path_or_dict
        out = raw.get("output_dir") if isinstance(raw, Mapping) else raw.output_dir
        if not out:
            raise ValueError("a recipe passed as a mapping needs an output_dir")
        recipe_path = write_stage_recipe(raw, Path(out) / "launch_recipe.yaml")
    cmd = build_launch_command(recipe_path, **launch)
    config = launch.get("accelerate_config", "ddp")
    kind = str(read_accelerate_config(config).get("distributed_type", "")).upper()
    if kind == "FSDP":
        import torch

        if not torch.cuda.is_available():
            log.warning("accelerate runs FSDP on accelerators only: without GPUs these "
                        "processes train as plain data parallel (MULTI_CPU)")
    child_env = dict(os.environ if env is None else env)
    # Every rank is a fresh interpreter: from a source checkout that is not installed it
    # must still import this resistkit (an installed one is importable anyway).
    src = Path(__file__).resolve().parents[1]
    paths = [p for p in child_env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if src.name == "src" and str(src) not in paths:
        child_env["PYTHONPATH"] = os.pathsep.join([str(src), *paths])
    log.info("launching: %s", " ".join(cmd))
    return subprocess.run(cmd, env=child_env, check=False).returncode
