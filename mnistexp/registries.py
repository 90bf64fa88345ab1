"""Where config validation and the CLI find the allowed values of every choice.

Each choice key maps to a registry dict in the module that implements it, so adding an option
is one entry there and validation, ``--help`` and error messages pick it up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mnistexp.config import ExperimentConfig

DTYPES = ("float32", "float64")


def choices() -> dict[str, tuple[str, ...]]:
    """Dotted config key -> allowed values, read from the registries."""
    from mnistexp import data, losses, model, optim, scaling, targets

    return {
        "data.dataset": tuple(data.DATASETS),
        "data.scaling": tuple(scaling.SCALINGS),
        "model.activation": tuple(model.ACTIVATIONS),
        "model.init": tuple(model.INITS),
        "loss.type": tuple(losses.LOSSES),
        "loss.output": tuple(losses.OUTPUTS),
        "targets.scheme": tuple(targets.TARGETS),
        "train.optimizer": tuple(optim.OPTIMIZERS),
        "train.schedule": tuple(optim.SCHEDULES),
        "train.dtype": DTYPES,
    }


def choice_fields(cfg: ExperimentConfig) -> list[tuple[str, Any, tuple[str, ...]]]:
    """(key, value in cfg, allowed values) for every choice key."""
    out = []
    for key, allowed in choices().items():
        section, name = key.split(".")
        out.append((key, getattr(getattr(cfg, section), name), allowed))
    return out


def outputs_for_loss(loss_type: str) -> tuple[str, ...]:
    """The output activations a loss accepts (cross_entropy: softmax; bce: sigmoid; ...)."""
    from mnistexp import losses

    return losses.LOSSES[loss_type].outputs
