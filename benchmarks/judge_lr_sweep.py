"""Choose the judge's learning rate on a validation split carved from the train snippets.

Each learning rate trains one judge on 90 % of the train split and is scored on the other
10 %; the held-out snippets are reported too but play no part in the choice. Run:

    OMP_WAIT_POLICY=PASSIVE python benchmarks/judge_lr_sweep.py --out /tmp/judge-sweep

About 5 min per learning rate on 2 CPU cores. Writes OUT/sweep.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from resistkit.judge import build_judge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--lr", type=float, action="append", help="repeatable")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    rows = []
    for lr in args.lr or [2e-5, 5e-5, 1e-4]:
        info = build_judge(
            args.out / f"lr-{lr:g}-ep{args.epochs}-bs{args.batch_size}",
            lr=lr,
            epochs=args.epochs,
            batch_size=args.batch_size,
            seed=args.seed,
            validation_fraction=args.validation_fraction,
        )
        rows.append({
            "lr": lr,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "validation_accuracy": info["validation"]["accuracy"],
            "num_validation": info["validation"]["n"],
            "heldout_accuracy": info["heldout"]["accuracy"],
            "final_loss": info["training"]["final_loss"],
            "train_s": info["wall_time_s"]["train"],
        })
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "sweep.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("| lr | epochs | batch | validation acc | held-out acc | final loss | train s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['lr']:g} | {r['epochs']} | {r['batch_size']} | "
              f"{r['validation_accuracy']:.3f} "
              f"(n={r['num_validation']}) | {r['heldout_accuracy']:.3f} | "
              f"{r['final_loss']:.3f} | {r['train_s']:.0f} |")


if __name__ == "__main__":
    main()
