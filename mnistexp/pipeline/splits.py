"""Dataset -> scaled, encoded train / validation / test splits, as the config asks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from mnistexp.config.loading import check_against_data
from mnistexp.core.schema import ExperimentConfig
from mnistexp.data.scaling import apply_scaling, fit_scaling
from mnistexp.learning.targets import make_scheme

N_CLASSES = 10


@dataclass
class Split:
    """One data split: inputs x (n, 784) float, labels y (n,) int, targets t (n, K)."""

    x: np.ndarray
    y: np.ndarray
    t: np.ndarray


class Scaler(Protocol):
    """Raw images (n, 28, 28) or (n, 784) uint8 -> model inputs (n, 784), written into
    ``out`` when given (a buffer of that shape and dtype)."""

    def __call__(self, images: np.ndarray, out: np.ndarray | None = None) -> np.ndarray: ...


def input_scaling(cfg: ExperimentConfig, dataset) -> Scaler:
    """Raw images (n, 28, 28) -> model inputs (n, 784) in ``train.dtype``, with the scaling
    fitted on the run's training split (the first ``train_subset`` of the images left after
    the validation hold-out): how every split, and every shifted copy of one, is scaled."""
    n_train = check_against_data(cfg, dataset.train_labels.shape[0])
    dtype = np.dtype(cfg.train.dtype).type
    shift, scale = fit_scaling(cfg.data.scaling, dataset.train_images[:n_train])

    def scaled(images: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return apply_scaling(images.reshape(len(images), -1), shift, scale, dtype, out)

    return scaled


def make_splits(cfg: ExperimentConfig, dataset) -> tuple[Split, Split | None, Split]:
    """Hold out the last ``data.validation`` training images, keep the first ``train_subset``
    of the rest, fit the scaling on that training split only and apply it to all three."""
    n_train = check_against_data(cfg, dataset.train_labels.shape[0])
    split = _splitter(cfg, dataset)
    train = split(dataset.train_images[:n_train], dataset.train_labels[:n_train])
    held_out = _held_out(cfg, dataset)
    val = None if held_out is None else split(*held_out)
    test = split(dataset.test_images, dataset.test_labels)
    return train, val, test


def validation_split(cfg: ExperimentConfig, dataset) -> Split | None:
    """The validation split alone, exactly as :func:`make_splits` builds it: what a finished
    run's recalibration maps are fitted on again (``mnistexp evaluate``), without scaling and
    encoding the training split it does not need."""
    check_against_data(cfg, dataset.train_labels.shape[0])
    held_out = _held_out(cfg, dataset)
    return None if held_out is None else _splitter(cfg, dataset)(*held_out)


def _held_out(cfg: ExperimentConfig, dataset) -> tuple[np.ndarray, np.ndarray] | None:
    """(images, labels) of the last ``data.validation`` training images, or None."""
    n_total, n_val = dataset.train_labels.shape[0], cfg.data.validation
    if not n_val:
        return None
    held_out = slice(n_total - n_val, n_total)
    return dataset.train_images[held_out], dataset.train_labels[held_out]


def _splitter(cfg: ExperimentConfig, dataset) -> Callable[[np.ndarray, np.ndarray], Split]:
    """(raw images, labels) -> a :class:`Split`: scaled as the run's training split, labels as
    int64, targets encoded by the run's scheme in ``train.dtype``."""
    dtype = np.dtype(cfg.train.dtype).type
    inputs = input_scaling(cfg, dataset)
    scheme = make_scheme(cfg.targets, N_CLASSES)

    def split(images: np.ndarray, labels: np.ndarray) -> Split:
        y = labels.astype(np.int64)
        return Split(inputs(images), y, scheme.encode(y, dtype))

    return split
