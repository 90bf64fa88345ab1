"""Study 10's tables and figure: which target encodings keep their probabilities honest under
shift?

    python configs/studies/shift/analyse.py RUNS_DIR OUT.md FIGURE.png

Reads every completed run under RUNS_DIR (shift.json, shift_predictions.npz, predictions.npz),
groups runs by name (one encoding each, seeds paired by seed), and writes a markdown report:

1. Accuracy and ECE per rotation angle (mean over seeds), raw, after temperature scaling and
   for the seed ensemble (probabilities of all seeds averaged; not recalibrated).
2. Ovadia et al.'s three MNIST findings, tested: (a) accuracy falls and ECE rises from 0 to
   60 degrees (paired over seeds); (b) temperature scaling fitted on in-distribution
   validation lowers ECE at 0 degrees but not under shift (its effect at 0 degrees against
   its effect averaged over 15-180 degrees, paired); (c) the seed ensemble against the mean
   single model of the same encoding under shift.
3. Every encoding, raw and with temperature or vector scaling, against one-hot + temperature
   scaling: mean ECE and NLL over the rotation grid (15-180), over the translation grid
   (2-14), on the UCI digits, and the AUROC (maximum softmax probability) against each OOD
   set; paired t-tests over seeds, Holm-adjusted over the whole table, differences with 95%
   intervals. An effect smaller than twice its standard error is called inconclusive.

The numbers come only from the run folders; nothing is hard-coded.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from mnistexp.analysis import ensembles, stats
from mnistexp.eval import metrics

BASE = ("onehot", "temperature")
VARIANTS = ("raw", "temperature", "vector")
ROTATIONS_UNDER_SHIFT = [float(a) for a in range(15, 181, 15)]
TRANSLATIONS_UNDER_SHIFT = [float(p) for p in range(2, 15, 2)]
OOD_SETS = ("letters", "uniform", "gaussian")


def load(root: Path) -> dict[str, dict[int, Path]]:
    """Encoding name -> seed -> completed run folder with a shift.json."""
    out: dict[str, dict[int, Path]] = defaultdict(dict)
    for folder in sorted(root.iterdir()):
        status = folder / "status.json"
        if not (folder / "shift.json").is_file() or not status.is_file():
            continue
        if json.loads(status.read_text()).get("state") != "completed":
            continue
        name, _, seed = folder.name.rpartition("-s")
        out[name.rsplit("-", 1)[0]][int(seed)] = folder
    return dict(out)


def set_value(report: dict[str, Any], key: str, variant: str, metric: str) -> float:
    return float(report["sets"][key][variant][metric])


def rotation_key(angle: float) -> str:
    return f"rotate/{angle:g}"


def under_shift(report: dict[str, Any], family: str, variant: str, metric: str) -> float:
    """Mean of ``metric`` over the family's severities beyond the identity."""
    grid = ROTATIONS_UNDER_SHIFT if family == "rotate" else TRANSLATIONS_UNDER_SHIFT
    return float(np.mean([set_value(report, f"{family}/{s:g}", variant, metric) for s in grid]))


def ensemble_rotation(folders: dict[int, Path], bins: int) -> dict[float, dict[str, float]]:
    """Angle -> accuracy and ECE of the seeds' averaged probabilities (raw), averaged as
    ``compare --shift`` averages them (:func:`mnistexp.analysis.ensembles.average`)."""
    labels = np.load(next(iter(folders.values())) / "predictions.npz")["labels"]
    out: dict[float, dict[str, float]] = {}
    reports = {s: json.loads((f / "shift.json").read_text()) for s, f in folders.items()}
    for angle in [0.0, *ROTATIONS_UNDER_SHIFT]:
        key = rotation_key(angle)
        probs = ensembles.average(
            [np.load(f / "shift_predictions.npz")[reports[s]["sets"][key]["probs"]]
             for s, f in folders.items()]
        )  # fmt: skip
        core = metrics.summary(probs, labels, probs.argmax(axis=1), bins=bins)
        out[angle] = {"accuracy": core["accuracy"], "ece": core["ece"]}
    return out


def main(root: Path, out_md: Path, figure: Path) -> None:
    runs = load(root)
    if BASE[0] not in runs:
        raise SystemExit(f"{root}: no completed onehot runs with a shift evaluation")
    reports = {
        name: {s: json.loads((f / "shift.json").read_text()) for s, f in seeds.items()}
        for name, seeds in runs.items()
    }
    names = [BASE[0], *sorted(n for n in runs if n != BASE[0])]
    bins = json.loads((next(iter(runs[BASE[0]].values())) / "shift.json").read_text())[
        "conventions"
    ]["bins"]
    lines = [f"Study 10: {len(names)} encodings, seeds per encoding: "
             + ", ".join(f"{n} {len(runs[n])}" for n in names) + ".", ""]  # fmt: skip

    # 1. rotation curves
    curves: dict[str, dict[str, list[float]]] = {}
    angles = [0.0, *ROTATIONS_UNDER_SHIFT]
    for name in names:
        for variant in ("raw", "temperature"):
            for metric in ("accuracy", "ece"):
                curves.setdefault(f"{name} {variant}", {})[metric] = [
                    float(np.mean([set_value(r, rotation_key(a), variant, metric)
                                   for r in reports[name].values()]))
                    for a in angles
                ]  # fmt: skip
        ens = ensemble_rotation(runs[name], bins)
        curves[f"{name} ensemble of {len(runs[name])}"] = {
            m: [ens[a][m] for a in angles] for m in ("accuracy", "ece")
        }
    lines += ["### ECE (%) by rotation angle, mean over seeds", ""]
    lines += [
        "| method | " + " | ".join(f"{a:g}°" for a in angles) + " |",
        "|---|" + "---:|" * len(angles),
    ]
    for label, curve in curves.items():
        lines.append(f"| {label} | " + " | ".join(f"{100 * v:.1f}" for v in curve["ece"]) + " |")
    lines += ["", "### Accuracy (%) by rotation angle, mean over seeds", ""]
    lines += [
        "| method | " + " | ".join(f"{a:g}°" for a in angles) + " |",
        "|---|" + "---:|" * len(angles),
    ]
    for label, curve in curves.items():
        row = " | ".join(f"{100 * v:.1f}" for v in curve["accuracy"])
        lines.append(f"| {label} | {row} |")

    # 2. Ovadia's findings
    tests: list[tuple[str, list[float], list[float], str]] = []  # (claim, base, other, metric)
    for name in names:
        seeds = sorted(reports[name])
        r = reports[name]
        tests.append(
            (
                f"{name}: accuracy at 60° vs 0°",
                [set_value(r[s], "rotate/0", "raw", "accuracy") for s in seeds],
                [set_value(r[s], "rotate/60", "raw", "accuracy") for s in seeds],
                "pp",
            )
        )
        tests.append(
            (
                f"{name}: ECE at 60° vs 0°",
                [set_value(r[s], "rotate/0", "raw", "ece") for s in seeds],
                [set_value(r[s], "rotate/60", "raw", "ece") for s in seeds],
                "pp",
            )
        )
        tests.append((f"{name}: ECE change by TS, under rotation vs at 0°",
                      [set_value(r[s], "rotate/0", "temperature", "ece")
                       - set_value(r[s], "rotate/0", "raw", "ece") for s in seeds],
                      [under_shift(r[s], "rotate", "temperature", "ece")
                       - under_shift(r[s], "rotate", "raw", "ece") for s in seeds],
                      "pp"))  # fmt: skip
    lines += ["", "### Ovadia et al.'s findings, paired over seeds (Holm over this table)", ""]
    lines += _test_table(tests)
    ens_lines = ["", "### Seed ensembles under rotation (15-180°, mean ECE and accuracy)", "",
                 "| encoding | single models ECE (mean ± sd) | ensemble ECE | single accuracy | "
                 "ensemble accuracy |", "|---|---:|---:|---:|---:|"]  # fmt: skip
    for name in names:
        single = [under_shift(r, "rotate", "raw", "ece") for r in reports[name].values()]
        single_acc = [under_shift(r, "rotate", "raw", "accuracy") for r in reports[name].values()]
        label = next(k for k in curves if k.startswith(f"{name} ensemble"))
        ens_ece = float(np.mean(curves[label]["ece"][1:]))
        ens_acc = float(np.mean(curves[label]["accuracy"][1:]))
        ens_lines.append(
            f"| {name} | {100 * np.mean(single):.2f} ± {100 * np.std(single, ddof=1):.2f} | "
            f"{100 * ens_ece:.2f} | {100 * np.mean(single_acc):.2f} | {100 * ens_acc:.2f} |"
        )
    lines += ens_lines

    # 3. against one-hot + temperature scaling
    base = reports[BASE[0]]
    comparisons: list[tuple[str, list[float], list[float], str]] = []
    outcomes: list[tuple[str, str, Any]] = [
        ("rotation ECE", "pp", lambda r, v: under_shift(r, "rotate", v, "ece")),
        ("rotation NLL", "", lambda r, v: under_shift(r, "rotate", v, "nll")),
        ("translation ECE", "pp", lambda r, v: under_shift(r, "translate", v, "ece")),
        ("digits ECE", "pp", lambda r, v: set_value(r, "digits", v, "ece")),
        *[
            (
                f"{o} AUROC (MSP)",
                "pp",
                lambda r, v, o=o: float(r["ood"][o][v]["msp"]["auroc"]),
            )
            for o in OOD_SETS
        ],
    ]
    for name in names:
        for variant in VARIANTS:
            if (name, variant) == BASE:
                continue
            shared = sorted(set(reports[name]) & set(base))
            for what, unit, get in outcomes:
                comparisons.append((
                    f"{name} {variant}: {what}",
                    [get(base[s], BASE[1]) for s in shared],
                    [get(reports[name][s], variant) for s in shared],
                    unit,
                ))  # fmt: skip
    lines += ["", "### Against one-hot + temperature scaling, paired over seeds "
              "(Holm over this table)", ""]  # fmt: skip
    lines += _test_table(comparisons)
    out_md.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    _figure(curves, angles, figure)


def _test_table(tests: list[tuple[str, list[float], list[float], str]]) -> list[str]:
    """Rows: claim, difference (other - base) with its 95% interval, Holm-adjusted p,
    verdict (inconclusive when |difference| < 2 standard errors)."""
    raw_p, rows = [], []
    for claim, base, other, unit in tests:
        diff, p, _ = stats.paired_t(base, other)
        low, high = stats.difference_interval(base, other, paired=True) or (np.nan, np.nan)
        se = float(np.std(np.subtract(other, base), ddof=1) / np.sqrt(len(base)))
        raw_p.append(1.0 if p is None else p)
        rows.append((claim, diff, low, high, se, unit))
    adjusted = stats.holm(raw_p)
    out = ["| comparison | difference (other - base) | 95% interval | Holm p | verdict |",
           "|---|---:|---:|---:|---|"]  # fmt: skip
    for (claim, diff, low, high, se, unit), p in zip(rows, adjusted, strict=True):
        scale = 100 if unit == "pp" else 1
        fmt = ".2f" if unit == "pp" else ".4f"
        if abs(diff) < 2 * se or p >= 0.05:
            verdict = "inconclusive"
        else:
            verdict = "higher" if diff > 0 else "lower"
        shown = f"{scale * diff:+{fmt}}{' pp' if unit == 'pp' else ''}"
        interval = f"[{scale * low:+{fmt}}, {scale * high:+{fmt}}]"
        out.append(f"| {claim} | {shown} | {interval} | {p:.3g} | {verdict} |")
    return out


def _figure(curves: dict[str, dict[str, list[float]]], angles: list[float], path: Path) -> None:
    """Four panels sharing one legend, one colour and marker per encoding: ECE raw, ECE after
    temperature scaling, ECE of the seed ensemble, and raw accuracy, against the angle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({label.split(" ")[0] for label in curves}, key=lambda n: (n != BASE[0], n))
    panels = [
        ("raw", "ece", "ECE (%), raw"),
        ("temperature", "ece", "ECE (%), after temperature scaling"),
        ("ensemble", "ece", "ECE (%), seed ensemble (raw)"),
        ("raw", "accuracy", "accuracy (%), raw"),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True, constrained_layout=True)
    colours, markers = plt.get_cmap("tab10"), "osD^v<>ph*"
    for ax, (variant, metric, title) in zip(axes.flat, panels, strict=True):
        for i, name in enumerate(names):
            label = next(k for k in curves if k.split(" ")[0] == name and variant in k)
            ax.plot(angles, [100 * v for v in curves[label][metric]], marker=markers[i],
                    markersize=3, lw=1.2, color=colours(i), label=name)  # fmt: skip
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("rotation (degrees)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=5, fontsize=8, frameon=False)
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
