"""The in-memory checkpoint a trainer hands out and a run folder stores. A leaf module."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Checkpoint:
    """Everything needed to continue training exactly where it stopped, after ``epoch`` epochs.

    ``params`` are :meth:`MLP.arrays`, ``optimizer`` the optimiser's ``state()``, ``rng_state``
    the generator's ``bit_generator.state`` (the next epoch's permutation comes from it) and
    ``history`` the rows of the finished epochs. Training on from a checkpoint is bit-identical
    to never having stopped.
    """

    epoch: int
    params: dict[str, np.ndarray]
    optimizer: dict[str, np.ndarray]
    rng_state: dict
    history: list[dict]
