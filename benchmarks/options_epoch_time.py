"""What each target scheme, loss and training rule costs per epoch, against the baseline.

Every option is configs/baseline.yaml (784-100-10 relu, softmax + cross-entropy, batch 32,
50k training images) with one setting changed. One epoch of the trainer's loop
(``trainer._epoch``: batching, the per-batch hook, mixup, the delta and backprop rules, the
monitor) is timed per option; repeats go round-robin over the options, so drift on a shared
machine hits every option alike, and the median, min and max of the repeats are printed with
the ratio to the baseline's median. Both the wall time and the process's CPU time are taken:
the step runs on one BLAS thread (batch 32 is below the trainer's threading threshold), so on
a machine busy with other work the CPU time is the steadier measure, and the ratios use it.
Each option's one-time setup (splits, and for distillation reading the teacher and computing
its logits on every split, once per run) is printed on stderr; a teacher is trained first (1
epoch of the baseline) in a temporary folder.

With ``--accuracy`` it then trains each option for one epoch end to end (the real
``run_experiment``, validation and evaluation included) and prints test accuracy and ECE.

    python benchmarks/options_epoch_time.py                 # 5 repeats (~3 minutes)
    python benchmarks/options_epoch_time.py --repeats 3 --accuracy
    python benchmarks/options_epoch_time.py --repeats 0 --accuracy  # the accuracy table only
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mnist"
if "MNISTEXP_DATA_DIR" not in os.environ and (DEFAULT_DATA / "train-images-idx3-ubyte.gz").exists():
    os.environ["MNISTEXP_DATA_DIR"] = str(DEFAULT_DATA)

from mnistexp.config.loading import load_config  # noqa: E402
from mnistexp.data import datasets as data  # noqa: E402
from mnistexp.learning.model import init_mlp  # noqa: E402
from mnistexp.learning.optim import make_optimizer  # noqa: E402
from mnistexp.orchestration import experiment  # noqa: E402
from mnistexp.pipeline import trainer  # noqa: E402

BASELINE = ROOT / "configs" / "baseline.yaml"
OPTIONS: dict[str, list[str]] = {
    "baseline (one-hot, CE)": [],
    "bootstrap_soft": ["targets.scheme=bootstrap_soft"],
    "bootstrap_hard": ["targets.scheme=bootstrap_hard"],
    "distill (T 4, alpha 0.9)": ["targets.scheme=distill"],
    "distill_hard": ["targets.scheme=distill_hard"],
    "mixup (alpha 0.2)": ["train.mixup_alpha=0.2"],
    "focal (gamma 2)": ["loss.type=focal"],
    "focal (FLSD-53)": ["loss.type=focal", "loss.gamma_schedule=flsd53"],
    "confidence penalty 0.1": ["loss.confidence_penalty=0.1"],
    "mse + tanh, targets -1/+1": [
        "loss.type=mse",
        "loss.output=tanh",
        "targets.scheme=soft",
        "targets.low=-1",
        "targets.high=1",
    ],
    "delta clamped": ["loss.delta=clamped"],
    "delta true_class": ["loss.delta=true_class"],
    "mse + sigmoid (exact)": ["loss.type=mse", "loss.output=sigmoid"],
    "mse + sigmoid, backprop tutorial": [
        "loss.type=mse",
        "loss.output=sigmoid",
        "train.backprop=tutorial",
    ],
    "mse + sigmoid, backprop rashid": [
        "loss.type=mse",
        "loss.output=sigmoid",
        "train.backprop=rashid",
    ],
    "file order (shuffle false)": ["train.shuffle=false"],
}


def teacher_run(root: Path) -> Path:
    cfg = load_config(BASELINE, ["train.epochs=1", "name=teacher"])
    return experiment.run_experiment(cfg, runs_dir=root).run_dir


def configs(teacher: Path) -> dict[str, object]:
    out = {}
    for name, sets in OPTIONS.items():
        if any(s.startswith("targets.scheme=distill") for s in sets):
            sets = [*sets, f"targets.teacher={teacher}"]
        out[name] = load_config(BASELINE, sets)
    return out


def time_epochs(cfgs: dict, dataset, runs_root: Path, repeats: int) -> dict[str, list[float]]:
    prepared, setup = {}, {}
    for name, cfg in cfgs.items():
        cpu = time.process_time()
        prepared[name] = experiment._prepare(cfg, dataset, runs_root)
        setup[name] = time.process_time() - cpu
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cfgs}
    for _ in range(repeats):
        for name, cfg in cfgs.items():
            p = prepared[name]
            rng = np.random.default_rng(0)
            sizes = [p.train.x.shape[1], *cfg.model.hidden, 10]
            model = init_mlp(sizes, cfg.model.activation, cfg.model.init, True, rng)
            optimizer = make_optimizer(model.parameters(), cfg.train)
            tr = cfg.train
            start, cpu = time.perf_counter(), time.process_time()
            with np.errstate(over="ignore", invalid="ignore"):
                trainer._epoch(model, p.objective, optimizer, p.train, tr.batch_size, tr.lr,
                               rng, None, tr.shuffle, tr.mixup_alpha)  # fmt: skip
            times[name].append((time.perf_counter() - start, time.process_time() - cpu))
    for name in cfgs:
        print(f"# setup (splits + prepare) {name}: {setup[name]:.2f} s CPU", file=sys.stderr)
    return times


def accuracy(cfgs: dict, root: Path) -> None:
    """Train each option for one epoch end to end; print test accuracy and ECE."""
    print("\n| option | test accuracy (%) | test ECE (%) | ECE after TS (%) |")
    print("| --- | ---: | ---: | ---: |")
    for name, cfg in cfgs.items():
        one_epoch = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=1))
        outcome = experiment.run_experiment(one_epoch, runs_dir=root / "accuracy")
        if outcome.metrics is None:  # diverged (true_class can) or failed: say so
            print(f"| {name} | {outcome.state}: {outcome.message} | | |")
            continue
        test = outcome.metrics["test"]
        ts = outcome.metrics.get("test_temperature_scaled") or {}
        print(
            f"| {name} | {100 * test['accuracy']:.2f} | {100 * test['ece']:.2f} | "
            f"{100 * ts.get('ece', float('nan')):.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--accuracy", action="store_true", help="also train each for 1 epoch")
    args = parser.parse_args()
    dataset = data.load("mnist")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        teacher = teacher_run(root / "teachers")
        cfgs = configs(teacher)
        if args.repeats == 0:  # --repeats 0 --accuracy: the accuracy table only
            accuracy(cfgs, root)
            return
        times = time_epochs(cfgs, dataset, root, args.repeats)
        base = statistics.median(c for _, c in times["baseline (one-hot, CE)"])
        print(f"one epoch, 50k images, batch 32, median of {args.repeats} (min-max), same process")
        print("\n| option | CPU (s) | min-max (s) | wall (s) | CPU / baseline |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for name, pairs in times.items():
            wall, cpu = [w for w, _ in pairs], [c for _, c in pairs]
            med = statistics.median(cpu)
            print(
                f"| {name} | {med:.3f} | {min(cpu):.3f}-{max(cpu):.3f} | "
                f"{statistics.median(wall):.3f} | {med / base:.2f} |"
            )
        if args.accuracy:
            accuracy(cfgs, root)


if __name__ == "__main__":
    main()
