"""The config schema: typed, frozen dataclasses, one per section. A leaf module.

Loading, validation and the run identity live in :mod:`mnistexp.config.loading`; components (losses,
target schemes, optimisers) import their section's type from here, so no component imports the
loader that validates it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

Extras = tuple[tuple[str, Any], ...]
"""(key, value) pairs of declared parameters that are not fields of their section."""


class _Section:
    """A component section (``loss``, ``targets``) whose components may declare parameters
    beyond its fields; their values are kept in ``params`` and read as attributes, so a new
    loss or scheme with a new parameter is one class and one registry entry."""

    params: Extras

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("_"):
            for key, value in object.__getattribute__(self, "params"):
                if key == name:
                    return value
        raise AttributeError(f"{type(self).__name__} has no parameter {name!r}")


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "mnist"
    dir: str | None = None  # folder with the IDX files; else MNISTEXP_DATA_DIR, cache, download
    scaling: str = "unit"  # unit [0,1] | tutorial [0.01,1] | standardize | symmetric | raw
    validation: int = 10000  # last N training images held out
    train_subset: int | None = None  # use only the first N training images


@dataclass(frozen=True)
class ModelConfig:
    hidden: tuple[int, ...] = (100,)
    activation: str = "sigmoid"  # sigmoid | relu | tanh
    init: str = "xavier"  # xavier | he | tutorial | normal
    bias: bool = True


@dataclass(frozen=True)
class LossConfig(_Section):
    type: str = "cross_entropy"  # cross_entropy | mse | bce | focal
    output: str = "softmax"  # softmax | sigmoid | linear | tanh (must fit the loss)
    delta: str = "exact"  # how the output-layer delta is formed (losses.DELTAS)
    params: Extras = ()  # parameters the loss declares beyond these fields (see _Section)


@dataclass(frozen=True)
class TargetsConfig(_Section):
    scheme: str = "onehot"  # onehot | soft (low/high) | smooth (epsilon) | bootstrap_* | distill*
    low: float = 0.01
    high: float = 0.99
    epsilon: float = 0.1
    params: Extras = ()  # parameters the scheme declares beyond these fields (see _Section)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 32
    optimizer: str = "sgd"  # sgd | adam
    lr: float = 0.1
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0  # L2 on weights (not biases), added to the gradient
    schedule: str = "constant"  # constant | step | cosine (per epoch)
    step_every: int = 5  # step schedule: multiply lr by gamma every N epochs
    gamma: float = 0.1
    dtype: str = "float32"  # float32 | float64
    backprop: str = "exact"  # how the output delta reaches the hidden layers (model.BACKPROPS)
    shuffle: bool = True  # a fresh permutation every epoch; false: file order (the tutorial)
    mixup_alpha: float = 0.0  # mixup (Zhang et al. 2018): lambda ~ Beta(a, a) per batch; 0 = off
    checkpoint_every: int = 0  # save a resumable checkpoint every N epochs; 0 = never


@dataclass(frozen=True)
class EvalConfig:
    bins: int = 15
    temperature_scaling: bool = True
    # recalibration maps fitted on validation, evaluated on test (recalibration.RECALIBRATIONS);
    # temperature also needs temperature_scaling: true
    recalibration: tuple[str, ...] = ("temperature",)
    bootstrap: int = 1000  # percentile-bootstrap resamples of the test set; 0 = no intervals


@dataclass(frozen=True)
class ShiftConfig:
    """Evaluation beyond the test set (``shift.json``): shifted copies of the test images, a
    digit set from other writers, out-of-distribution sets, selective prediction. Nothing here
    changes training, so no key of this section enters the run identity; ``mnistexp evaluate``
    adds the evaluation to a finished run."""

    # shifted test sets to evaluate on: rotate, translate, noise, contrast, digits (UCI)
    families: tuple[str, ...] = ()
    rotate: tuple[float, ...] = tuple(15.0 * i for i in range(13))  # degrees, 0 to 180
    translate: tuple[int, ...] = (0, 2, 4, 6, 8, 10, 12, 14)  # pixels to the right
    noise: tuple[float, ...] = (0.0, 25.0, 50.0, 75.0, 100.0, 150.0)  # Gaussian sd, grey levels
    contrast: tuple[float, ...] = (1.0, 0.8, 0.6, 0.4, 0.2, 0.1)  # ink scaled by this factor
    ood: tuple[str, ...] = ()  # out-of-distribution sets: letters, uniform, gaussian
    ood_size: int = 2000  # images per out-of-distribution set


@dataclass(frozen=True)
class ExperimentConfig:
    name: str = "default"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    targets: TargetsConfig = field(default_factory=TargetsConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    shift: ShiftConfig = field(default_factory=ShiftConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples as lists), ready for YAML or JSON."""
        out = plain(dataclasses.asdict(self))
        for section in ("loss", "targets"):  # extras sit beside the fields, as in the file
            out[section] |= dict(out[section].pop("params"))
        return out


def plain(value: Any) -> Any:
    """Nested dicts, lists and tuples as dicts and lists (tuples as lists), for YAML or JSON."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
