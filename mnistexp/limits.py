"""Bounds on what the command line accepts, shared by commands that must agree on them.

A leaf: imports nothing, so ``mnistexp --help`` can use it without loading the library.
"""

MAX_SEEDS = 10_000
"""Seeds per sweep (``--seeds``) and per config file in ``compare CONFIG --seeds N``."""
