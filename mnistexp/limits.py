"""Bounds on what the command line accepts, shared by commands that must agree on them.

A leaf: imports nothing, so ``mnistexp --help`` can use it without loading the library.
"""

MAX_SEEDS = 10_000
"""Seeds per sweep (``--seeds``) and per config file in ``compare CONFIG --seeds N``."""

MAX_RUNS = 100_000
"""Runs per sweep: the product of the grid's sizes, the zip's length, the explicit runs and
the seeds, counted before anything is expanded (a grid of 10^6 points is a typo, not a plan)."""
