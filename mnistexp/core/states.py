"""Run states: the one vocabulary of status.json, outcomes, summaries and the compare notes.

Every run folder is in exactly one :class:`State`. Five are written into status.json; the
sixth, ``unreadable``, is what a folder is when its status cannot be trusted (no status.json,
an empty, truncated or unparseable one, an unknown state, or a file or symbolic link where a
folder should be). :data:`RETRAIN` is the one rule of what ``train``, ``sweep``,
``sweep --dry-run`` and ``compare`` (when it trains) do with each state; the README's "When
things go wrong" table describes it.

A leaf: imports nothing from mnistexp. :class:`State` members are ``str``, so status.json,
the ``--json`` summaries and comparisons with strings read back from disk see the plain value.
(The exit codes are :class:`mnistexp.core.errors.ExitCode`, next to the interrupts they encode.)
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
    UNREADABLE = "unreadable"  # never written: a folder whose status cannot be read

    # The value, not ``State.RUNNING``, in str() and f-strings on every Python from 3.10 on
    # (3.11 changed what format() gives for mixed-in enums; ``enum.StrEnum`` is 3.11+).
    def __str__(self) -> str:
        return self.value

    def __format__(self, format_spec: str) -> str:
        return format(self.value, format_spec)


WRITTEN = tuple(s for s in State if s is not State.UNREADABLE)
"""The states status.json holds; any other value reads as :attr:`State.UNREADABLE`."""

RETRAIN: dict[State, str] = {
    State.RUNNING: "never",  # another live process owns the folder
    State.COMPLETED: "force",  # only with --force
    State.FAILED: "retry_failed",  # with --retry-failed (or --force)
    State.DIVERGED: "retry_failed",
    State.INTERRUPTED: "always",  # Ctrl-C, SIGTERM or a dead process says nothing of the run
    State.UNREADABLE: "always",  # nothing in it can be trusted, so nothing is lost
}
"""When a folder in each state is (re)trained: ``always``, with ``force``, with
``retry_failed`` (``force`` too), or ``never``."""
