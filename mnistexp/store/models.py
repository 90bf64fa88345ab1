"""A finished run's ``model.npz`` read back as the MLP its config describes.

Used where a finished model is put to work again: a distillation teacher and ``mnistexp
evaluate``. The arrays are checked against the shapes the run's config.yaml implies before
any is used, so a truncated, foreign or hand-edited file is one line naming it.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from mnistexp.core.errors import RunError
from mnistexp.core.schema import ExperimentConfig
from mnistexp.core.yamlio import one_line
from mnistexp.learning.model import MLP
from mnistexp.store import runs

MODEL = "model.npz"


def model_shapes(cfg: ExperimentConfig, n_inputs: int, n_classes: int) -> dict[str, tuple]:
    """The arrays of ``model.npz`` that ``cfg`` trains: ``W<l>`` (fan_in, fan_out) and, with
    ``model.bias``, ``b<l>`` (fan_out,)."""
    sizes = [n_inputs, *cfg.model.hidden, n_classes]
    shapes: dict[str, tuple] = {}
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        shapes[f"W{i}"] = (fan_in, fan_out)
        if cfg.model.bias:
            shapes[f"b{i}"] = (fan_out,)
    return shapes


def model_misfit(arrays: dict[str, np.ndarray], shapes: dict[str, tuple]) -> str | None:
    """Why ``arrays`` are not floating-point arrays of exactly ``shapes`` (those of the model
    the run's config.yaml describes); None if they are."""
    for name, shape in shapes.items():
        array = arrays.get(name)
        if array is None:
            return f"no array {name}, which the model of its config.yaml needs, shape {shape}"
        if array.shape != shape or array.dtype.kind != "f":
            found = f"{array.dtype} {array.shape}"
            return f"{name} is {found}, the model of its config.yaml needs float {shape}"
    extra = sorted(set(arrays) - set(shapes))
    return f"array {extra[0]} is not part of the model of its config.yaml" if extra else None


def read_model(folder: Path, cfg: ExperimentConfig, n_inputs: int, n_classes: int) -> MLP:
    """``folder``'s model.npz as the MLP ``cfg`` describes; a one-line :class:`RunError`
    starting with the file's path when it is missing, corrupt or of another shape."""
    file = folder / MODEL
    try:
        arrays = runs.read_npz(file)
    except runs.NPZ_ERRORS as exc:
        raise RunError(f"{file}: {one_line(str(exc))}") from None
    why = model_misfit(arrays, model_shapes(cfg, n_inputs, n_classes))
    if why:
        raise RunError(f"{file}: {why}")
    layers = len(cfg.model.hidden) + 1
    weights = [arrays[f"W{i}"] for i in range(layers)]
    biases = [arrays.get(f"b{i}") for i in range(layers)]
    return MLP(weights, biases, cfg.model.activation)
