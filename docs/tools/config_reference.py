"""Write the config reference page from the code, so it cannot drift from what mnistexp accepts.

Every key of :func:`mnistexp.config.loading.all_keys` gets its type and default (the schema's
dataclasses in ``mnistexp/core/schema.py`` and the components' declared ``Param`` objects), its
allowed values (the registries of ``mnistexp/config/registries.py``, the declared ranges, and
the rule texts of the validation itself, the ones its error messages quote), a description
(the schema's field comment, else the ``Param``'s help, else :data:`DESCRIPTIONS`) and one
example that is run through ``load_config`` while the page is built: an example that stops
validating fails the build.

The mkdocs hook (``docs/tools/hooks.py``) calls :func:`render` on every build; by hand:
``python docs/tools/config_reference.py [OUT.md]`` (stdout without OUT).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import re
import sys
import tokenize
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mnistexp.config import loading, registries
from mnistexp.core import schema
from mnistexp.core.params import Param

SECTIONS = ("data", "model", "loss", "targets", "train", "eval", "shift")

DESCRIPTIONS = {
    "name": "the run's name: the first part of its folder name (default: the config file's stem)",
    "seed": "seed of the run's random generator (initialisation, shuffling, mixup, bootstrap)",
    "data.dataset": "which dataset's files to read",
    "data.scaling": "how uint8 pixels become inputs, fitted on the training split",
    "model.hidden": "hidden layer sizes, input to output",
    "model.activation": "activation of the hidden layers",
    "model.init": "weight initialisation",
    "model.bias": "whether the layers have biases",
    "loss.type": "the loss",
    "loss.output": "the output activation (must fit the loss, see below)",
    "targets.scheme": "what the loss is asked to match (the target encoding)",
    "train.epochs": "passes over the training images",
    "train.batch_size": "images per step",
    "train.optimizer": "the optimiser",
    "train.lr": "learning rate",
    "train.momentum": "SGD momentum",
    "train.nesterov": "Nesterov momentum (needs train.momentum > 0)",
    "train.schedule": "learning-rate schedule per epoch",
    "train.gamma": "step schedule: the factor applied every train.step_every epochs",
    "train.dtype": "floating-point type of the parameters and inputs",
    "eval.bins": "equal-width bins of the ECE and the reliability diagrams",
    "eval.temperature_scaling": "fit a temperature on the validation split",
}
"""Descriptions of the keys whose schema field has no comment and whose component declares no
help (``tests/test_docs.py`` checks that every entry still names a key)."""

EXAMPLES: dict[str, tuple[str, ...]] = {
    "name": ("name=my_run",),
    "seed": ("seed=1",),
    "data.dir": ("data.dir=/data/mnist",),
    "data.validation": ("data.validation=5000",),
    "data.train_subset": ("data.train_subset=2000",),
    "model.hidden": ("model.hidden=[256,128]",),
    "model.activation": ("model.activation=relu",),
    "model.init": ("model.init=he",),
    "loss.type": ("loss.type=mse", "loss.output=sigmoid"),
    "loss.output": ("loss.type=mse", "loss.output=tanh", "targets.scheme=soft",
                    "targets.low=-1", "targets.high=1"),
    "loss.confidence_penalty": ("loss.confidence_penalty=0.1",),
    "loss.gamma": ("loss.type=focal", "loss.gamma=3"),
    "loss.gamma_schedule": ("loss.type=focal", "loss.gamma_schedule=flsd53"),
    "targets.scheme": ("targets.scheme=smooth",),
    "targets.low": ("targets.scheme=soft", "targets.low=0.05"),
    "targets.high": ("targets.scheme=soft", "targets.high=0.95"),
    "targets.epsilon": ("targets.scheme=smooth", "targets.epsilon=0.05"),
    "targets.beta": ("targets.scheme=bootstrap_soft", "targets.beta=0.9"),
    "targets.gradient": ("targets.scheme=bootstrap_soft", "targets.gradient=through"),
    "targets.teacher": ("targets.scheme=distill", "targets.teacher=runs/teacher-5b323fec-s100"),
    "targets.temperature": ("targets.scheme=distill", "targets.teacher=runs/teacher-5b323fec-s100",
                            "targets.temperature=2"),
    "targets.alpha": ("targets.scheme=distill", "targets.teacher=runs/teacher-5b323fec-s100",
                      "targets.alpha=0.5"),
    "train.epochs": ("train.epochs=30",),
    "train.batch_size": ("train.batch_size=128",),
    "train.optimizer": ("train.optimizer=adam", "train.lr=0.001"),
    "train.lr": ("train.lr=0.05",),
    "train.momentum": ("train.momentum=0.9",),
    "train.nesterov": ("train.momentum=0.9", "train.nesterov=true"),
    "train.weight_decay": ("train.weight_decay=0.0001",),
    "train.schedule": ("train.schedule=cosine",),
    "train.step_every": ("train.schedule=step", "train.step_every=10"),
    "train.gamma": ("train.schedule=step", "train.gamma=0.5"),
    "train.backprop": ("loss.type=mse", "loss.output=sigmoid", "train.backprop=tutorial"),
    "train.mixup_alpha": ("train.mixup_alpha=0.2",),
    "train.checkpoint_every": ("train.checkpoint_every=1",),
    "eval.bins": ("eval.bins=20",),
    "eval.recalibration": ("eval.recalibration=[temperature,vector,isotonic]",),
    "eval.bootstrap": ("eval.bootstrap=0",),
    "shift.families": ("shift.families=[rotate,noise]",),
    "shift.rotate": ("shift.families=[rotate]", "shift.rotate=[0,45,90]"),
    "shift.translate": ("shift.families=[translate]", "shift.translate=[0,4,8]"),
    "shift.noise": ("shift.families=[noise]", "shift.noise=[0,50,100]"),
    "shift.contrast": ("shift.families=[contrast]", "shift.contrast=[1,0.5,0.25]"),
    "shift.ood": ("shift.ood=[letters,uniform]",),
    "shift.ood_size": ("shift.ood=[letters]", "shift.ood_size=500"),
}  # fmt: skip
"""One example per key as ``--set`` items, the key's own among them, after the keys it needs;
keys without an entry get one made from their allowed values (:func:`example`)."""

UNCHECKED = {"targets.teacher", "targets.temperature", "targets.alpha"}
"""Examples that name a teacher run folder, which validation opens: not run at build time."""

FILLED_IN = {"targets.teacher_id": "set by mnistexp from targets.teacher; never given"}


# --------------------------------------------------------------------------- reading the code


def field_comments() -> dict[str, str]:
    """Dotted key -> the comment of its field in ``mnistexp/core/schema.py``: the comment at
    the end of the field's line, else the comment lines right above it."""
    source = inspect.getsource(schema)
    lines = source.splitlines()
    comments = {
        tok.start[0]: (tok.start[1], tok.string.lstrip("#").strip())
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    }

    def alone(line: int) -> bool:  # a comment with nothing before it on its line
        return line in comments and not lines[line - 1][: comments[line][0]].strip()

    sections = {typing.get_type_hints(schema.ExperimentConfig)[s].__name__: s for s in SECTIONS}
    out: dict[str, str] = {}
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ClassDef) or node.name not in sections:
            continue
        for item in node.body:
            if not isinstance(item, ast.AnnAssign) or not isinstance(item.target, ast.Name):
                continue
            line, text = item.lineno, ""
            if line in comments and not alone(line):
                text = comments[line][1]
            else:
                above = line - 1
                while alone(above):
                    text = f"{comments[above][1]} {text}".strip()
                    above -= 1
            out[f"{sections[node.name]}.{item.target.id}"] = text
    return out


def declarations() -> dict[str, list[tuple[str, Param]]]:
    """Dotted key -> (component, its Param) for every component that declares the key,
    e.g. ``targets.beta`` -> bootstrap_soft (0.95) and bootstrap_hard (0.8)."""
    out: dict[str, list[tuple[str, Param]]] = {}
    for section, (chooser, registry) in registries.COMPONENTS.items():
        for name, component in registry.items():
            for param in component.params:
                out.setdefault(f"{section}.{param.name}", []).append(
                    (f"{section}.{chooser} = {name}", param)
                )
    return out


def field_types() -> dict[str, tuple[Any, Any]]:
    """Dotted key -> (type hint, default) of every schema field."""
    root = schema.ExperimentConfig()
    out: dict[str, tuple[Any, Any]] = {}
    for key in ("name", "seed"):
        out[key] = (typing.get_type_hints(schema.ExperimentConfig)[key], getattr(root, key))
    for section in SECTIONS:
        value = getattr(root, section)
        hints = typing.get_type_hints(type(value))
        for f in dataclasses.fields(value):
            if f.name != "params":
                out[f"{section}.{f.name}"] = (hints[f.name], getattr(value, f.name))
    return out


def validation_rules() -> dict[str, list[str]]:
    """Dotted key -> the rule texts validation checks it by (``must be in [0, 1)``), read
    from the validation itself on a config that exercises every list entry."""
    probe = loading.from_dict(
        {
            "eval": {"recalibration": list(registries.list_choices()["eval.recalibration"])},
            "shift": {
                "families": list(registries.list_choices()["shift.families"]),
                "ood": list(registries.list_choices()["shift.ood"]),
            },
        }
    )
    out: dict[str, list[str]] = {}
    for key, _, _, rule in loading._range_rules(probe):
        base = re.sub(r"\[\d+\]$", "", key)
        rule = "each value at most once" if rule == "listed twice" else rule
        if rule and rule not in out.setdefault(base, []):
            out[base].append(rule)
    return out


# --------------------------------------------------------------------------- one key


def type_text(hint: Any) -> str:
    """``int | None`` -> ``integer or null``; ``tuple[float, ...]`` -> ``list of numbers``."""
    names = {int: "integer", float: "number", bool: "true or false", str: "text"}
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple:
        return f"list of {names[args[0]].replace('integer', 'integers')}".replace(
            "number", "numbers"
        ).replace("text", "names")
    if type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        return f"{type_text(inner)} or null"
    return names[hint]


def yaml_text(value: Any) -> str:
    """A value as YAML flow text: ``[100]``, ``null``, ``true``, ``0.1``."""
    if isinstance(value, tuple | list):
        return "[" + ", ".join(yaml_text(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) and value == "" else str(value)


def allowed_text(key: str, rules: list[str]) -> str:
    """The allowed values: a choice list from the registries, else the validation's rules."""
    if key in registries.choices():
        return "one of " + ", ".join(f"`{c}`" for c in registries.choices()[key])
    if key in registries.list_choices():
        values = ", ".join(f"`{c}`" for c in registries.list_choices()[key])
        return f"any of {values}; " + "; ".join(r for r in rules if r.startswith("each"))
    return "; ".join(rules) or "any"


def example(key: str, hint: Any, default: Any) -> tuple[str, ...]:
    """The ``--set`` items of the key's example: :data:`EXAMPLES`, else one made from the
    registries (another choice, the other boolean), else the default."""
    if key in EXAMPLES:
        return EXAMPLES[key]
    choices = registries.choices().get(key, ())
    other = next((c for c in choices if c != default), None)
    if other is not None:
        return (f"{key}={other}",)
    if hint is bool:
        return (f"{key}={yaml_text(not default)}",)
    return (f"{key}={yaml_text(default)}",)


def check_example(key: str, items: Iterable[str]) -> None:
    """Run an example through ``load_config``; a SystemExit naming it if it is invalid."""
    if key in UNCHECKED:
        return
    try:
        loading.load_config(None, list(items))
    except loading.ConfigError as exc:
        raise SystemExit(f"config reference: the example of {key} is invalid: {exc}") from None


# --------------------------------------------------------------------------- the page


def cell(text: str) -> str:
    """``text`` for a table cell: Markdown's special characters escaped outside code spans
    (``'_' or '-'`` is no emphasis, ``<seed>`` no tag), no line break, ``|`` escaped."""
    parts = re.split(r"(`+[^`]*`+)", " ".join(text.split()))
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r"([\\*_\[\]])", r"\\\1", parts[i])
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "".join(parts).replace("|", "\\|")


def rows(keys: list[str]) -> list[str]:
    """Table rows of ``keys``: key, default, type and allowed values, example, description."""
    types, comments = field_types(), field_comments()
    declared, rules = declarations(), validation_rules()
    out = []
    for key in keys:
        if key in types:
            hint, default = types[key]
            read_by = ""
        else:
            (_, first), *_ = declared[key]
            hint, default = first.type, first.default
            read_by = "; ".join(f"`{who}` (default {yaml_text(p.default)})"
                                for who, p in declared[key])  # fmt: skip
        helps = [p.help for _, p in declared.get(key, []) if p.help]
        comment = comments.get(key, "")
        if key in registries.choices() and "|" in comment:
            comment = ""  # "sigmoid | relu | tanh": the allowed column says it from the registry
        text = comment or (helps[0] if helps else "") or DESCRIPTIONS.get(key, "")
        if read_by:
            text = f"{text}; read by {read_by}" if text else f"read by {read_by}"
        if key in FILLED_IN:
            shown = cell(FILLED_IN[key])
        else:
            items = example(key, hint, default)
            check_example(key, items)
            shown = "<br>".join(f"`--set {i}`" for i in items)
        allowed = allowed_text(key, rules.get(key, []))
        allowed = type_text(hint) + ("" if allowed == "any" else f": {allowed}")
        cells = [f"`{key}`", f"`{yaml_text(default)}`", cell(allowed), shown, cell(text)]
        out.append("| " + " | ".join(cells) + " |")
    return out


HEADER = "| key | default | allowed | example | description |\n| --- | --- | --- | --- | --- |"

INTRO = """\
---
hide:
  - toc
---

# Config reference

Every key a config file, `--set` or the Python API's `overrides` accepts, generated from the
code on every `make docs`: types and defaults from the schema's dataclasses
(`mnistexp/core/schema.py`) and the components' declared parameters, allowed values from the
registries (`mnistexp/config/registries.py`) and from the rules of the validation itself
(`mnistexp/config/loading.py`), whose one-line errors quote the same words. Every example
below was run through `load_config` when this page was built (those naming a teacher run
folder excepted).

A YAML file states only what differs from the defaults; the sections are mappings,
`train: {lr: 0.05}`, and `--set train.lr=0.05` sets one key after the file (values as YAML).
"""


def describe(entry: Any) -> str:
    """The first sentence of what a registry entry says about itself, or "": a class's or a
    function's docstring, a descriptive field, else the docstring of its first documented
    function field (a delta rule's ``form``)."""
    text = ""
    if inspect.isclass(entry) or inspect.isfunction(entry):
        text = inspect.getdoc(entry) or ""
    elif dataclasses.is_dataclass(entry):
        texts = [getattr(entry, a, None) for a in ("description", "rule", "citation", "unit")]
        functions = [getattr(entry, f.name) for f in dataclasses.fields(entry)]
        texts += [inspect.getdoc(f) for f in functions if inspect.isfunction(f)]
        text = next((t for t in texts if isinstance(t, str) and t), "")
    text = ROLE.sub(lambda m: f"`{m.group(1).split('.')[-1]}`", " ".join(text.split()))
    return SENTENCE_END.split(text, maxsplit=1)[0] if text else ""


ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")
"""A Sphinx role in a docstring, ``:class:`~mnistexp.x.Y```: shown as the code ``Y``."""


SENTENCE_END = re.compile(r"(?<!\bal)(?<!e\.g)(?<=\.)\s+(?=[A-Z`])")
"""A full stop that ends a sentence: before a capital, not in "et al." or "e.g."."""


def choice_lines() -> list[str]:
    """The values of the choice keys whose registry entries describe themselves, with that."""
    out = ["## Choices", "", "What the registry entries say about themselves.", ""]
    registries_by_key = _registries()
    for key in loading.all_keys():
        about = {name: describe(e) for name, e in registries_by_key.get(key, {}).items()}
        if any(about.values()):
            out += [f"### `{key}`", ""]
            out += [f"- `{name}`" + (f": {cell(t)}" if t else "") for name, t in about.items()]
            out.append("")
    return out


def _registries() -> dict[str, dict[str, Any]]:
    """Choice key -> its registry (name -> entry), for the keys whose entries are objects."""
    from mnistexp.data import datasets, ood, scaling, shifts
    from mnistexp.eval import recalibration
    from mnistexp.learning import losses, model, optim, targets

    return {
        "data.dataset": datasets.DATASETS,
        "data.scaling": scaling.SCALINGS,
        "model.activation": model.ACTIVATIONS,
        "model.init": model.INITS,
        "loss.type": losses.LOSSES,
        "loss.output": losses.OUTPUTS,
        "loss.delta": losses.DELTAS,
        "targets.scheme": targets.TARGETS,
        "train.optimizer": optim.OPTIMIZERS,
        "train.schedule": optim.SCHEDULES,
        "train.backprop": model.BACKPROPS,
        "eval.recalibration": recalibration.RECALIBRATIONS,
        "shift.families": {**shifts.SHIFTS, "digits": None},
        "shift.ood": ood.OOD_SETS,
    }


def render() -> str:
    """The whole page as markdown."""
    keys = loading.all_keys()
    out = [INTRO]
    groups = [("Top level", [k for k in keys if "." not in k])]
    groups += [(f"`{s}`", [k for k in keys if k.startswith(f"{s}.")]) for s in SECTIONS]
    for title, members in groups:
        out += [f"## {title}", "", HEADER, *rows(members), ""]
    out += ["## Which loss takes which outputs", "", "| loss.type | loss.output |",
            "| --- | --- |"]  # fmt: skip
    for loss in registries.choices()["loss.type"]:
        outputs = ", ".join(f"`{o}`" for o in registries.outputs_for_loss(loss))
        out.append(f"| `{loss}` | {outputs} |")
    out += ["", *choice_lines()]
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str]) -> None:
    text = render()
    if argv:
        Path(argv[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main(sys.argv[1:])
