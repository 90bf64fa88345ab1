"""Typed, frozen, strict experiment configs.

A YAML file states only what differs from the defaults below; ``--set key.path=value``
overrides (values parsed as YAML scalars or lists) are applied after the file. Validation
turns every problem into one :class:`ConfigError` line naming the key path, the bad value and
what is allowed, with choices read from the registries, so a new option is one registry entry.

Files are read by :mod:`mnistexp.core.yamlio` (safe, bounded, duplicate keys refused). Messages
never contain a line break: keys and values from the input are shown escaped and shortened.

A loaded config's identity, the hash in its run id, is :mod:`mnistexp.config.identity`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import math
import string
import types
import typing
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from mnistexp.core.bounded import read_bounded
from mnistexp.core.errors import ConfigError
from mnistexp.core.params import Param
from mnistexp.core.schema import (  # re-exported: the config types are part of this module's API
    DataConfig,
    EvalConfig,
    ExperimentConfig,
    LossConfig,
    ModelConfig,
    ShiftConfig,
    TargetsConfig,
    TrainConfig,
)
from mnistexp.core.yamlio import clip, kind, one_line, read_yaml_mapping, safe_yaml, show

__all__ = [
    "DataConfig",
    "EvalConfig",
    "ExperimentConfig",
    "LossConfig",
    "ModelConfig",
    "ShiftConfig",
    "TargetsConfig",
    "TrainConfig",
    "from_dict",
    "load_config",
    "to_yaml",
]

MAX_NAME_LENGTH = 100  # run names become folder names (file systems allow 255 bytes)
MAX_LAYER_SIZE = 100_000  # a wider hidden layer would not fit in memory anyway
MAX_BINS = 10_000
MAX_SEED = 2**63 - 1
MAX_EPOCHS = 100_000  # at a second an epoch, more than a day; beyond is a typo
MAX_BOOTSTRAP = 100_000
MAX_OOD = 100_000  # images per out-of-distribution set
LIST_EXAMPLES = {
    "eval.recalibration": "[temperature, vector]",
    "shift.families": "[rotate, translate]",
    "shift.ood": "[letters, uniform]",
    "shift.rotate": "[0, 45, 90]",
}


# --------------------------------------------------------------------------- loading


def load_config(
    path: str | Path | None = None,
    overrides: typing.Sequence[str] = (),
) -> ExperimentConfig:
    """Read a YAML file (or start from defaults), apply ``key=value`` overrides, validate."""
    raw: dict[str, Any] = {}
    if path is not None:
        example = f"'name: {_stem(Path(path))}' (leave out --config for the defaults)"
        raw = read_yaml_mapping(Path(path), "config", example)
        raw.setdefault("name", Path(path).stem)
        try:  # the file on its own first, so its errors name the file
            from_dict(raw)
        except ConfigError as exc:
            raise ConfigError(f"{one_line(str(path))}: {exc}") from None
    for item in overrides:
        key, value = parse_override(item)
        _set_dotted(raw, key, value)
    return _with_teacher(from_dict(raw))


def _with_teacher(cfg: ExperimentConfig) -> ExperimentConfig:
    """A distilled run's config with its teacher resolved: ``targets.teacher`` as an absolute
    folder and ``targets.teacher_id`` as that run's ``<config_hash>-s<seed>``, which is what
    enters the student's identity. The teacher must be a completed run on the same dataset
    whose training images are not the student's validation images (checked here where the
    configs tell, and against the data before training)."""
    t = cfg.targets
    names = dict(t.params)
    reads_teacher = "teacher" in _declared("targets", t.scheme)
    if not reads_teacher or not names.get("teacher"):
        return cfg  # the scheme reads no teacher (validation asks for one where it does)
    shown = show(names["teacher"])
    folder = Path(names["teacher"]).expanduser().absolute()

    def bad(why: str) -> ConfigError:
        return ConfigError(f"targets.teacher = {shown} is invalid: {why}")

    if not folder.is_dir():
        raise bad("no such run folder" if not folder.exists() else "a file, not a run folder")
    try:
        status = json.loads(read_bounded(folder / "status.json").decode("utf-8"))
    except (OSError, UnicodeError, ValueError, RecursionError):
        raise bad("not a run folder (no readable status.json)") from None
    state = status.get("state") if isinstance(status, dict) else None
    chash = status.get("config_hash") if isinstance(status, dict) else None
    if state != "completed" or not isinstance(chash, str):
        raise bad(f"the teacher run is {clip(str(state))}, not completed")
    teacher, _ = read_stored(folder / "config.yaml")
    if teacher.data.dataset != cfg.data.dataset:
        raise bad(f"trained on {teacher.data.dataset}, this run on {cfg.data.dataset}")
    if teacher.data.train_subset is None and teacher.data.validation < cfg.data.validation:
        raise bad(
            f"it trained on images this run validates on (its data.validation = "
            f"{teacher.data.validation} < {cfg.data.validation})"
        )
    names |= {"teacher": str(folder), "teacher_id": f"{chash}-s{teacher.seed}"}
    targets = dataclasses.replace(t, params=tuple(sorted(names.items())))
    return dataclasses.replace(cfg, targets=targets)


def read_stored(
    path: Path, raw: dict[str, Any] | None = None
) -> tuple[ExperimentConfig, list[str]]:
    """A run folder's config.yaml, read leniently: a config written by an older or newer
    mnistexp loads even where it no longer validates strictly. Unknown keys are dropped and
    values outside today's rules kept; each such problem is one note naming the key.
    A file that cannot be read as a config at all is a :class:`ConfigError`. ``raw``: the
    same config already read (from the run's config.json); ``path`` then names it in notes."""
    if raw is None:
        raw = read_yaml_mapping(path, "config", "a run folder's config.yaml")
    try:
        return from_dict(raw), []
    except ConfigError:
        pass
    notes: list[str] = []
    cleaned = _known_only(raw, ExperimentConfig, "", notes)
    where = one_line(str(path))
    notes = [f"{where}: {note} ignored (written by another mnistexp version?)" for note in notes]
    try:
        cfg = _build(ExperimentConfig, {**{s: {} for s in _CHOOSER}, **cleaned}, prefix="")
    except ConfigError as exc:
        raise ConfigError(f"{one_line(str(path))}: {exc}") from None
    try:
        validate(cfg)
    except ConfigError as exc:
        notes.append(f"{one_line(str(path))}: {exc} (kept as written)")
    return cfg, notes


def _known_only(raw: Any, cls: type, prefix: str, notes: list[str]) -> Any:
    """``raw`` without the keys this version does not know, with a note for each."""
    if not isinstance(raw, dict):
        return raw
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)} | set(_declared(prefix.rstrip(".")))
    out = {}
    for key, value in raw.items():
        if key not in known:
            notes.append(
                f"unknown key {prefix}{_show_key(key)} ignored (another mnistexp version?)"
            )
        elif key in hints and is_dataclass(hints[key]):
            out[key] = _known_only(value or {}, hints[key], f"{prefix}{key}.", notes)
        else:
            out[key] = value
    return out


def _stem(path: Path) -> str:
    return path.stem if _safe_name(path.stem) else "my_run"


def parse_override(item: str) -> tuple[str, Any]:
    """``"train.lr=0.05"`` -> ``("train.lr", 0.05)``; the value is a YAML scalar or list."""
    key, sep, text = item.partition("=")
    key = key.strip()
    shown = clip(repr(item), 120)
    if not sep or not key:
        raise ConfigError(f"--set {shown}: expected key.path=value, e.g. train.lr=0.05")
    if any(not part.strip() for part in key.split(".")):
        raise ConfigError(f"--set {shown}: empty part in the key {clip(repr(key))}")
    try:
        value = safe_yaml(text, "") if text.strip() else None
    except ConfigError:
        raise ConfigError(f"--set {shown}: the value is not valid YAML") from None
    return key, value


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    node = raw
    *parents, leaf = key.split(".")
    leaves = set(all_keys())
    for i, part in enumerate(parents):
        path = ".".join(parents[: i + 1])
        if path in leaves:
            raise ConfigError(f"{path} is not a section, so {clip(key)} cannot be set")
        child = node.setdefault(part, {})
        if child is None:  # "train:" with nothing under it is an empty section
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{clip(path)} is not a section, so {clip(key)} cannot be set")
        node = child
    if isinstance(value, dict) and isinstance(node.get(leaf), dict):
        node[leaf] = _merged(node[leaf], value)  # --set 'train={lr: 0.3}' keeps train.epochs
    else:
        node[leaf] = value


def _merged(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """``base`` with the keys of ``change`` set, sections merged key by key, so that a
    mapping given to ``--set`` changes only the keys it names (as dotted keys would)."""
    out = dict(base)
    for key, value in change.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merged(out[key], value) if both else value
    return out


# --------------------------------------------------------------------------- building


def from_dict(raw: dict[str, Any]) -> ExperimentConfig:
    """Build and validate a config from a nested dict of (partial) settings."""
    if isinstance(raw, dict):  # component sections always resolve their parameters
        raw = {**{section: {} for section in _CHOOSER}, **raw}
    cfg = _build(ExperimentConfig, raw, prefix="")
    validate(cfg)
    return cfg


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix.rstrip('.')} must be a section (mapping), got {kind(raw)}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)} - {"params"}
    declared = _declared(prefix.rstrip("."))
    for key in raw:
        if key not in names and key not in declared:
            raise ConfigError(unknown_key(prefix + _show_key(key)))
    values: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    for name in raw:
        path = prefix + name
        if name not in names:
            extras[name] = _coerce(raw[name], declared[name].type, path)
        elif is_dataclass(hints[name]):
            values[name] = _build(
                hints[name], raw[name] if raw[name] is not None else {}, path + "."
            )
        else:
            values[name] = _coerce(raw[name], hints[name], path)
    if declared:  # the chosen component's parameters, at their defaults where not given
        chooser = _CHOOSER[prefix.rstrip(".")]
        choice = values.get(chooser, getattr(cls(), chooser))
        chosen = _declared(prefix.rstrip("."), choice) if choice in _registry(prefix) else {}
        extras = {p: chosen[p].default for p in chosen if p not in names} | extras
        values["params"] = tuple(sorted(extras.items()))
    return cls(**values)


_CHOOSER = {"loss": "type", "targets": "scheme"}


def _declared(section: str, choice: str | None = None) -> dict[str, Param]:
    """Declared parameters of a component section (all components, or the chosen one)."""
    if section not in _CHOOSER:
        return {}
    from mnistexp.config import registries

    return registries.declared_params(section, choice)


def _registry(prefix: str) -> dict[str, Any]:
    from mnistexp.config import registries

    return registries.COMPONENTS[prefix.rstrip(".")][1]


def _coerce(value: Any, hint: Any, path: str) -> Any:
    """Check ``value`` against a field's type hint; ints are accepted for floats."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, path)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(
                f"{path} = {show(value)} is invalid: expected a list, e.g. "
                f"{LIST_EXAMPLES.get(path, '[256, 128]')}"
            )
        return tuple(_coerce(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
    if hint is float:
        return _coerce_float(value, path)
    if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{path} = {show(value)} is invalid: expected {_type_name(hint)}")


def _coerce_float(value: Any, path: str) -> float:
    """A finite float from a float, an int, or a string float() reads (YAML 1.1 reads 1e-3
    as a string)."""
    number = None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = float(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond the float range
            number = math.inf
    if number is None:
        raise ConfigError(f"{path} = {show(value)} is invalid: expected a number")
    if not math.isfinite(number):
        raise ConfigError(f"{path} = {show(value)} is invalid: must be a finite number")
    return number


def _show_key(key: Any) -> str:
    """A mapping key as the user would type it; quoted when empty, spaced or not a string."""
    text = str(key)
    plain = isinstance(key, str) and text.isprintable() and text and not text.isspace()
    return clip(text) if plain and " " not in text else clip(repr(key))


def _type_name(hint: Any) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        hint, str(hint)
    )


def all_keys() -> list[str]:
    """Every valid dotted key, e.g. ``['name', 'seed', 'data.dataset', ...]``."""

    def walk(cls: Any, prefix: str) -> list[str]:
        out: list[str] = []
        for f in fields(cls):
            hint = typing.get_type_hints(cls)[f.name]
            out += walk(hint, prefix + f.name + ".") if is_dataclass(hint) else [prefix + f.name]
        return out

    keys = walk(ExperimentConfig, "")
    extras = [f"{s}.{p}" for s in _CHOOSER for p in _declared(s) if f"{s}.{p}" not in keys]
    return [k for k in keys if not k.endswith(".params")] + extras


def unknown_key(path: str) -> str:
    """``unknown key train.lrr; did you mean train.lr?``: the message for a dotted key that
    is no config key, with the closest one (difflib) when there is one."""
    keys = all_keys()
    sections = {key.rsplit(".", 1)[0] for key in keys if "." in key}
    close = difflib.get_close_matches(path, [*keys, *sorted(sections)], n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"unknown key {path}{hint}"


# --------------------------------------------------------------------------- validation


def validate(cfg: ExperimentConfig) -> None:
    """Raise :class:`ConfigError` for the first value or combination that makes no sense."""
    from mnistexp.config import registries

    for path, value, choices in registries.choice_fields(cfg):
        if value not in choices:
            raise ConfigError(
                f"{path} = {show(value)} is invalid: choose one of {', '.join(choices)}"
            )
    for path, value, ok, rule in _range_rules(cfg):
        if not ok:
            raise ConfigError(f"{path} = {show(value)} is invalid: {rule}")
    allowed = registries.outputs_for_loss(cfg.loss.type)
    if cfg.loss.output not in allowed:
        raise ConfigError(
            f"loss.output = {show(cfg.loss.output)} does not fit loss.type = "
            f"{show(cfg.loss.type)}: "
            f"use loss.output = {' or '.join(allowed)}"
        )


def _range_rules(cfg: ExperimentConfig) -> list[tuple[str, Any, bool, str]]:
    from mnistexp.config import registries

    tr, d, m = cfg.train, cfg.data, cfg.model
    return [
        (
            "name",
            cfg.name,
            _safe_name(cfg.name),
            "use ASCII letters, digits, '.', '_' or '-', starting with a letter, digit or '_'",
        ),
        (
            "name",
            cfg.name,
            len(cfg.name) <= MAX_NAME_LENGTH,
            f"at most {MAX_NAME_LENGTH} characters (it becomes a folder name)",
        ),
        ("seed", cfg.seed, cfg.seed >= 0, "must be >= 0"),
        ("seed", cfg.seed, cfg.seed <= MAX_SEED, "must be < 2**63"),
        ("data.validation", d.validation, 0 <= d.validation < 60000, "must be in [0, 60000)"),
        (
            "data.train_subset",
            d.train_subset,
            d.train_subset is None or d.train_subset >= 1,
            "must be >= 1 or null",
        ),
        ("model.hidden", list(m.hidden), len(m.hidden) > 0, "must list at least one layer size"),
        *[
            (f"model.hidden[{i}]", h, h >= 1, "layer sizes must be >= 1")
            for i, h in enumerate(m.hidden)
        ],
        *[
            (
                f"model.hidden[{i}]",
                h,
                h <= MAX_LAYER_SIZE,
                f"layer sizes must be <= {MAX_LAYER_SIZE}",
            )
            for i, h in enumerate(m.hidden)
        ],
        *_declared_rules(cfg),
        ("train.epochs", tr.epochs, tr.epochs >= 1, "must be >= 1"),
        ("train.epochs", tr.epochs, tr.epochs <= MAX_EPOCHS, f"must be <= {MAX_EPOCHS}"),
        ("train.batch_size", tr.batch_size, tr.batch_size >= 1, "must be >= 1"),
        ("train.lr", tr.lr, tr.lr > 0, "must be > 0"),
        ("train.momentum", tr.momentum, 0.0 <= tr.momentum < 1.0, "must be in [0, 1)"),
        (
            "train.nesterov",
            tr.nesterov,
            not tr.nesterov or tr.momentum > 0,
            "needs train.momentum > 0",
        ),
        ("train.weight_decay", tr.weight_decay, tr.weight_decay >= 0, "must be >= 0"),
        ("train.mixup_alpha", tr.mixup_alpha, tr.mixup_alpha >= 0, "must be >= 0 (0: no mixup)"),
        (
            "train.mixup_alpha",
            tr.mixup_alpha,
            not tr.mixup_alpha or tr.batch_size >= 2,
            "needs train.batch_size >= 2 (a batch is mixed with a permutation of itself)",
        ),
        ("train.step_every", tr.step_every, tr.step_every >= 1, "must be >= 1"),
        ("train.gamma", tr.gamma, 0 < tr.gamma <= 1, "must be in (0, 1]"),
        (
            "train.checkpoint_every",
            tr.checkpoint_every,
            tr.checkpoint_every >= 0,
            "must be >= 0 (0: no checkpoints)",
        ),
        ("eval.bins", cfg.eval.bins, cfg.eval.bins >= 1, "must be >= 1"),
        ("eval.bins", cfg.eval.bins, cfg.eval.bins <= MAX_BINS, f"must be <= {MAX_BINS}"),
        ("eval.bootstrap", cfg.eval.bootstrap, cfg.eval.bootstrap >= 0, "must be >= 0 (0: none)"),
        (
            "eval.bootstrap",
            cfg.eval.bootstrap,
            cfg.eval.bootstrap <= MAX_BOOTSTRAP,
            f"must be <= {MAX_BOOTSTRAP}",
        ),
        *_list_rules(cfg),
        (
            "shift.ood_size",
            cfg.shift.ood_size,
            1 <= cfg.shift.ood_size <= MAX_OOD,
            f"must be in [1, {MAX_OOD}]",
        ),
        *registries.severity_rules(cfg),
    ]


def _list_rules(cfg: ExperimentConfig) -> list[tuple[str, Any, bool, str]]:
    """Every entry of a list-valued choice key is an allowed value, and none is listed twice."""
    from mnistexp.config import registries

    out = []
    for key, allowed in registries.list_choices().items():
        section, name = key.split(".")
        values = getattr(getattr(cfg, section), name)
        rule = f"choose from {', '.join(allowed)}"
        for i, value in enumerate(values):
            out.append((f"{key}[{i}]", value, value in allowed, rule))
            out.append((f"{key}[{i}]", value, value not in values[:i], "listed twice"))
    return out


def _declared_rules(cfg: ExperimentConfig) -> list[tuple[str, Any, bool, str]]:
    """Every declared parameter of the component sections against its declaration, then each
    component's combination checks."""
    from mnistexp.config import registries

    out = []
    for section, (_, registry) in registries.COMPONENTS.items():
        sub = getattr(cfg, section)
        for name, param in registries.declared_params(section).items():
            value = getattr(sub, name, param.default)
            out.append((f"{section}.{name}", value, param.allows(value), param.rule()))
        for component in registry.values():
            out += component.problems(sub, cfg.loss)
    for rules, key in (
        (registries.DELTA_RULES, cfg.loss.delta),
        (registries.BACKPROP_RULES, cfg.train.backprop),
    ):
        if key in rules:
            out += rules[key].problems(cfg)
    return out


def _safe_name(name: str) -> bool:
    """A run name is used as the start of a folder name: no separators, no control
    characters, no leading '.' (hidden, '..') or '-' (read as an option)."""
    allowed = string.ascii_letters + string.digits + "._-"
    return bool(name) and name[0] not in ".-" and all(c in allowed for c in name)


def check_against_data(cfg: ExperimentConfig, n_train_total: int) -> int:
    """Validate the sizes that depend on the dataset; return the number of training images."""
    d = cfg.data
    if d.validation >= n_train_total:
        raise ConfigError(
            f"data.validation = {d.validation} is invalid: must be < {n_train_total} images"
        )
    n_train = n_train_total - d.validation
    if d.train_subset is not None:
        if d.train_subset > n_train:
            raise ConfigError(
                f"data.train_subset = {d.train_subset} is invalid: only {n_train} training "
                f"images remain after data.validation = {d.validation}"
            )
        n_train = d.train_subset
    if cfg.train.batch_size > n_train:
        raise ConfigError(
            f"train.batch_size = {cfg.train.batch_size} is invalid: larger than the "
            f"{n_train} training images"
        )
    return n_train


def to_yaml(cfg: ExperimentConfig, block: bool = False) -> str:
    """The fully resolved config as YAML, in schema order. The run folders' config.yaml keeps
    flow-style lists (``hidden: [100]``); ``block`` writes every collection in block style,
    one value a line, as ``--print-config`` shows it."""
    flow = False if block else None
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=flow)


def replace(cfg: ExperimentConfig, **changes: Any) -> ExperimentConfig:
    """Shallow :func:`dataclasses.replace` at the top level (``seed=``, ``name=``), validated."""
    new = dataclasses.replace(cfg, **changes)
    validate(new)
    return new
