"""Check that final.yaml trains each loss at the rate its learning-rate grid picks.

    mnistexp compare --runs-dir runs/studies/losses_grid --metrics val_accuracy --format json \
        | python configs/studies/losses/pick_rates.py configs/studies/losses/final.yaml

Reads compare's JSON on stdin, takes for every experiment name the learning rate with the best
mean validation accuracy, prints the choice, and exits 1 if final.yaml disagrees (so
`make study-losses` cannot silently pair a new grid with old rates).
"""

from __future__ import annotations

import json
import sys

import yaml


def best_rates(report: dict) -> dict[str, tuple[float, float]]:
    """Experiment name -> (learning rate, mean validation accuracy) of its best grid cell."""
    best: dict[str, tuple[float, float]] = {}
    for exp in report["experiments"]:
        name = exp.get("run_name") or exp["name"].split("@")[0].split("[")[0]
        score = exp["metrics"]["val_accuracy"]["mean"]
        if score is not None and (name not in best or score > best[name][1]):
            best[name] = (exp["config"]["train.lr"], score)
    return best


def main(final_path: str) -> int:
    best = best_rates(json.load(sys.stdin))
    with open(final_path) as fh:
        final = {run["name"]: run["train.lr"] for run in yaml.safe_load(fh)["runs"]}
    wrong = []
    for name, (lr, score) in sorted(best.items()):
        print(
            f"{name:12s} best lr {lr:g} (validation accuracy {100 * score:.2f}%), "
            f"final.yaml: {final.get(name)}"
        )
        if final.get(name) != lr:
            wrong.append(name)
    if wrong or set(final) != set(best):
        print(
            f"{final_path} does not use the grid's best rates for {wrong or 'every loss'}; "
            "update it",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
