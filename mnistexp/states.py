"""Run states: the one vocabulary of status.json, outcomes, summaries and the compare notes.

A leaf: imports nothing from mnistexp. :class:`State` members are ``str``, so status.json, the
``--json`` summaries and comparisons with strings read back from disk see the plain value.
(The exit codes are :class:`mnistexp.errors.ExitCode`, next to the interrupts they encode.)
"""

from __future__ import annotations

from enum import Enum


class State(str, Enum):
    """The state of a run folder, as its status.json records it."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"

    # The value, not ``State.RUNNING``, in str() and f-strings on every Python from 3.10 on
    # (3.11 changed what format() gives for mixed-in enums; ``enum.StrEnum`` is 3.11+).
    def __str__(self) -> str:
        return self.value

    def __format__(self, format_spec: str) -> str:
        return format(self.value, format_spec)
