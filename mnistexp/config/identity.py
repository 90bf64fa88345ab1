"""A run's identity: the config reduced to what can change a number, and its hash.

:func:`config_hash` is a SHA-256 of the canonical JSON of :func:`identity`: the resolved config,
:func:`normalised` (keys the chosen components do not read reset to their defaults, lists in
registry order, ``-0.0`` as ``0.0``), without :data:`IDENTITY_EXCLUDED`. Keys newer than schema 1
enter only when set away from their defaults, so a run id once written never changes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import fields
from typing import Any

from mnistexp.core.schema import ExperimentConfig, ShiftConfig

__all__ = ["IDENTITY_EXCLUDED", "config_hash", "identity", "normalised"]

IDENTITY_EXCLUDED = (
    "seed",
    "name",
    "data.dir",
    "train.checkpoint_every",
    "targets.teacher",
    *(f"shift.{f.name}" for f in fields(ShiftConfig)),
)
"""Keys that never enter a run's identity: the seed and name are in the folder name beside
the hash, where the files live does not change them (the data is verified by checksum; a
teacher enters as ``targets.teacher_id``, its own identity), a resumed run is bit-identical
to an uninterrupted one, and the ``shift`` section only says what to evaluate a finished model
on (``mnistexp evaluate`` adds it later). The one list: compare hides these too."""

SCHEMA1_KEYS = frozenset(
    [
        "data.dataset",
        "data.scaling",
        "data.validation",
        "data.train_subset",
        "model.hidden",
        "model.activation",
        "model.init",
        "model.bias",
        "loss.type",
        "loss.output",
        "targets.scheme",
        "targets.low",
        "targets.high",
        "targets.epsilon",
        "train.epochs",
        "train.batch_size",
        "train.optimizer",
        "train.lr",
        "train.momentum",
        "train.nesterov",
        "train.weight_decay",
        "train.schedule",
        "train.step_every",
        "train.gamma",
        "train.dtype",
        "eval.bins",
        "eval.temperature_scaling",
    ]
)
"""The identity keys of schema 1 (mnistexp 0.1). Run ids must never change, so these always
enter the hash as they always did; every key added later enters it only when set away from its
default, so a new option leaves every existing run folder's name as it is."""


def normalised(cfg: ExperimentConfig) -> ExperimentConfig:
    """``cfg`` with every key that cannot change a number reset to its default.

    Keys of the component sections that the chosen loss or target scheme does not declare
    (``targets.epsilon`` under ``onehot``) and ``train`` keys that the chosen optimiser or
    schedule does not read (``train.step_every`` under a constant schedule) describe nothing
    about the run; numbers are made canonical (``-0.0`` is ``0.0``).
    """
    from mnistexp.config import registries

    used = registries.used_keys(cfg)
    default = ExperimentConfig()
    optional_train = {k for o in _optimisers() for k in o} | _schedule_keys()
    changes: dict[str, Any] = {}
    train = {k: getattr(default.train, k) for k in optional_train - set(used["train"])}
    changes["train"] = dataclasses.replace(cfg.train, **train)
    for section, (_, _) in registries.COMPONENTS.items():
        sub = getattr(cfg, section)
        field_names = {f.name for f in fields(sub)}
        reset = {
            name: param.default
            for name, param in registries.declared_params(section).items()
            if name in field_names and name not in used[section]
        }
        extras = tuple((k, v) for k, v in sub.params if k in used[section])
        changes[section] = dataclasses.replace(sub, **reset, params=extras)
    changes["eval"] = _canonical_lists(cfg.eval)
    return _canonical(dataclasses.replace(cfg, **changes))


def _canonical_lists(section: Any) -> Any:
    """List-valued choice keys in their registry's order: the order they are listed in does
    not change a number, so ``[vector, temperature]`` is ``[temperature, vector]``."""
    from mnistexp.config import registries

    changes = {}
    for key, allowed in registries.list_choices().items():
        prefix, name = key.split(".")
        if prefix == "eval" and all(v in allowed for v in getattr(section, name)):
            changes[name] = tuple(sorted(getattr(section, name), key=allowed.index))
    return dataclasses.replace(section, **changes)


def _optimisers() -> list[tuple[str, ...]]:
    from mnistexp.learning import optim

    return [o.keys for o in optim.OPTIMIZERS.values()]


def _schedule_keys() -> set[str]:
    from mnistexp.learning import optim

    return {k for keys in optim.SCHEDULE_KEYS.values() for k in keys}


def _canonical(cfg: ExperimentConfig) -> ExperimentConfig:
    """Every float of every section plus 0.0, which turns -0.0 into 0.0."""

    def fix(value: Any) -> Any:
        return value + 0.0 if isinstance(value, float) else value

    sections: dict[str, Any] = {}
    for f in fields(cfg):
        sub: Any = getattr(cfg, f.name)
        if f.name not in ("name", "seed"):  # the sections
            changes = {g.name: fix(getattr(sub, g.name)) for g in fields(sub)}
            if "params" in changes:
                changes["params"] = tuple((k, fix(v)) for k, v in sub.params)
            sections[f.name] = dataclasses.replace(sub, **changes)
    return dataclasses.replace(cfg, **sections)


def identity(cfg: ExperimentConfig) -> dict[str, Any]:
    """The nested dict that :func:`config_hash` hashes: the normalised config without
    ``IDENTITY_EXCLUDED``, with keys newer than schema 1 only where they differ from their
    defaults."""
    flat = flatten(normalised(cfg).to_dict())
    defaults = flatten(ExperimentConfig().to_dict()) | _extra_defaults()
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if key in IDENTITY_EXCLUDED:
            continue
        if key in SCHEMA1_KEYS or value != defaults.get(key, _MISSING):
            section, _, leaf = key.rpartition(".")
            out.setdefault(section, {})[leaf] = value
    return out


_MISSING = object()


def _extra_defaults() -> dict[str, Any]:
    """Every declared parameter of the component sections (``loss.*``, ``targets.*``) at its
    default: the keys that are not fields of the config sections."""
    from mnistexp.config import registries

    return {
        f"{s}.{name}": p.default
        for s in registries.COMPONENTS
        for name, p in registries.declared_params(s).items()
    }


def flatten(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"data": {"scaling": "unit"}}`` -> ``{"data.scaling": "unit"}``, in order."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, dict):
            out |= flatten(value, f"{prefix}{key}.")
        else:
            out[prefix + key] = value
    return out


def config_hash(cfg: ExperimentConfig) -> str:
    """Hex SHA-256 of the canonical JSON of :func:`identity`."""
    canonical = json.dumps(identity(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
