"""How many times is a model (and a tokenizer) loaded in one seed of a recipe?

Runs a recipe in this process with the sequential executor, counting every
``from_pretrained`` of a model and of a tokenizer by the directory it read, and prints
the counts per kind and per directory, with the stage times from the run's log. The default
shrinks the SmolLM2 demo's volumes (control 20, Q1 {10, 20}, Q2 {0, 10, 20, 30}, 20 held-out
snippets per compression set) but keeps its stage graph: the load count depends on the stages,
not on how much each one trains or scores.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/count_loads.py [--recipe cpu/smollm2_demo]
        [--full]   # the recipe's own volumes

Needs the recipe's model (``resistkit models download smollm2-135m`` for the demo).
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from pathlib import Path
from typing import Any

SMALL_DEMO = [
    "seeds=[42]",
    "setting2.control.num_samples=20",
    "setting2.q1=[10, 20]",
    "setting2.q2=[0, 10, 20, 30]",
    "eval.compression=[{dataset: builtin:reviews/positive, split: heldout, num_samples: 20},"
    " {dataset: builtin:reviews/negative, split: heldout, num_samples: 20}]",
]

counts: collections.Counter[tuple[str, str]] = collections.Counter()


def _count(cls: type, kind: str) -> None:
    """Wrap ``cls.from_pretrained`` so that each call is counted under (kind, directory)."""
    original = cls.from_pretrained.__func__

    def counted(klass: type, path: Any, *args: Any, **kwargs: Any) -> Any:
        counts[(kind, str(path))] += 1
        return original(klass, path, *args, **kwargs)

    cls.from_pretrained = classmethod(counted)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipe", default="cpu/smollm2_demo")
    ap.add_argument("--full", action="store_true", help="the recipe's own volumes")
    args = ap.parse_args()
    from transformers import PreTrainedModel
    from transformers.tokenization_utils_base import PreTrainedTokenizerBase

    from resistkit.cli import app

    _count(PreTrainedModel, "model")
    _count(PreTrainedTokenizerBase, "tokenizer")
    overrides = [] if args.full else SMALL_DEMO
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        argv = ["run", args.recipe, "-o", str(out)]
        for item in overrides:
            argv += ["--set", item]
        start = time.time()
        app(argv, standalone_mode=False)
        wall = time.time() - start
        log = (out / "run.log").read_text().splitlines()
        stages = [line.split(" INFO resistkit.run: ")[1] for line in log
                  if " INFO resistkit.run: done " in line]
    tmp_prefix = str(out)
    by_kind = collections.Counter()
    for (kind, _), n in counts.items():
        by_kind[kind] += n
    print(f"\n{args.recipe}{'' if args.full else ' (small volumes, same stages)'}: "
          f"{len(stages)} stages in {wall:.0f} s")
    for line in stages:
        print("  " + line)
    print("loads:", ", ".join(f"{kind} {n}" for kind, n in sorted(by_kind.items())))
    for (kind, path), n in sorted(counts.items()):
        print(f"  {kind:<9} {n:>3}  {path.replace(tmp_prefix, 'RUN')}")


if __name__ == "__main__":
    main()
