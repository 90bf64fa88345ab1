"""Where config validation and the CLI find the allowed values of every choice.

Each choice key maps to a registry dict in the module that implements it, so adding an option
is one entry there and validation, ``--help`` and error messages pick it up. Components of
the ``loss`` and ``targets`` sections also declare the parameters they read
(:func:`declared_params`), and optimisers and schedules the ``train`` keys they read
(:func:`used_keys`): keys the chosen components do not read are left out of the identity.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mnistexp.core.params import Param
from mnistexp.data import datasets as data
from mnistexp.data import ood, scaling, shifts
from mnistexp.eval import recalibration
from mnistexp.learning import losses, model, optim, targets

if TYPE_CHECKING:
    from mnistexp.core.schema import ExperimentConfig

DTYPES = ("float32", "float64")

COMPONENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "loss": ("type", losses.LOSSES),
    "targets": ("scheme", targets.TARGETS),
}
"""Component section -> (the key that chooses the component, its registry)."""

DELTA_RULES = losses.DELTAS
BACKPROP_RULES = model.BACKPROPS
"""Rules with combination checks of their own (``problems(cfg)``), run by config validation."""


def choices() -> dict[str, tuple[str, ...]]:
    """Dotted config key -> allowed values, read from the registries."""
    return {
        "data.dataset": tuple(data.DATASETS),
        "data.scaling": tuple(scaling.SCALINGS),
        "model.activation": tuple(model.ACTIVATIONS),
        "model.init": tuple(model.INITS),
        "loss.type": tuple(losses.LOSSES),
        "loss.output": tuple(losses.OUTPUTS),
        "loss.delta": tuple(losses.DELTAS),
        "targets.scheme": tuple(targets.TARGETS),
        "train.optimizer": tuple(optim.OPTIMIZERS),
        "train.schedule": tuple(optim.SCHEDULES),
        "train.backprop": tuple(model.BACKPROPS),
        "train.dtype": DTYPES,
    }


def list_choices() -> dict[str, tuple[str, ...]]:
    """Dotted list-valued config key -> the values its entries may take (each at most once)."""
    return {
        "eval.recalibration": tuple(recalibration.RECALIBRATIONS),
        "shift.families": (*shifts.SHIFTS, "digits"),
        "shift.ood": tuple(ood.OOD_SETS),
    }


def severity_rules(cfg: ExperimentConfig) -> list[tuple[str, Any, bool, str]]:
    """(key, value, allowed, rule) for every severity of every shift family: each within
    the family's declared range, listed once; a family asked for has at least one."""
    out = []
    for name, family in shifts.SHIFTS.items():
        values = getattr(cfg.shift, name)
        if name in cfg.shift.families:
            out.append((f"shift.{name}", list(values), len(values) > 0, "list at least one"))
        rule = f"{family.severity.rule()} ({family.unit})"
        for i, value in enumerate(values):
            out.append((f"shift.{name}[{i}]", value, family.severity.allows(value), rule))
            out.append((f"shift.{name}[{i}]", value, value not in values[:i], "listed twice"))
    return out


def choice_fields(cfg: ExperimentConfig) -> list[tuple[str, Any, tuple[str, ...]]]:
    """(key, value in cfg, allowed values) for every choice key."""
    out = []
    for key, allowed in choices().items():
        section, name = key.split(".")
        out.append((key, getattr(getattr(cfg, section), name), allowed))
    return out


def outputs_for_loss(loss_type: str) -> tuple[str, ...]:
    """The output activations a loss accepts (cross_entropy: softmax; bce: sigmoid; ...)."""
    return losses.LOSSES[loss_type].outputs


def declared_params(section: str, choice: str | None = None) -> dict[str, Param]:
    """The parameters of the ``section`` component ``choice`` (all components' when None)."""
    _, registry = COMPONENTS[section]
    chosen = registry.values() if choice is None else [registry[choice]]
    return {p.name: p for component in chosen for p in component.params}


def used_keys(cfg: ExperimentConfig) -> dict[str, tuple[str, ...]]:
    """Section -> the keys of ``train`` and the component sections that ``cfg``'s chosen
    optimiser, schedule, loss and target scheme read (beyond the choosing keys). A choice this
    version does not know (a run folder from a newer mnistexp) is taken to read every key."""
    tr = cfg.train
    every_train = {k for o in optim.OPTIMIZERS.values() for k in o.keys}
    every_train |= {k for keys in optim.SCHEDULE_KEYS.values() for k in keys}
    if tr.optimizer in optim.OPTIMIZERS and tr.schedule in optim.SCHEDULE_KEYS:
        train = (*optim.OPTIMIZERS[tr.optimizer].keys, *optim.SCHEDULE_KEYS[tr.schedule])
    else:
        train = tuple(sorted(every_train))
    out = {"train": train}
    for section, (key, registry) in COMPONENTS.items():
        sub = getattr(cfg, section)
        choice = getattr(sub, key)
        if choice in registry:
            out[section] = tuple(declared_params(section, choice))
        else:
            out[section] = (*declared_params(section), *(k for k, _ in sub.params))
    return out
