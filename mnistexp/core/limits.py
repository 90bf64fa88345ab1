"""Bounds on what the command line accepts, shared by commands that must agree on them.

A leaf: imports nothing, so ``mnistexp --help`` can use it without loading the library.
"""

MAX_SEEDS = 10_000
"""Seeds per sweep (``--seeds``) and per config file in ``compare CONFIG --seeds A-B``."""

MAX_RUNS = 100_000
"""Runs per sweep: the product of the grid's sizes, the zip's length, the explicit runs and
the seeds, counted before anything is expanded (a grid of 10^6 points is a typo, not a plan)."""


def ascii_digits(text: str) -> bool:
    """True if ``text`` (spaces around it aside) is 1 to 19 ASCII digits 0-9, the one rule for
    every whole number on the command line. ``int()`` also reads other scripts' digits ('٣'
    is 3) and ``1_000``, and ``str.isdigit`` takes '²'; none of them is a number here."""
    text = text.strip()
    return text.isascii() and text.isdigit() and len(text) <= 19
