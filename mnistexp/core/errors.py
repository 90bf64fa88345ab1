"""Exceptions that mean "the user gave us something we cannot use".

The CLI turns every :class:`UsageError` into one line on stderr and exit code 2; anything
else escaping a command is a bug and keeps its traceback. A leaf: imports nothing from mnistexp.
"""

import signal
from enum import IntEnum

PARENT_GONE_SIGNAL = getattr(signal, "SIGUSR1", signal.SIGTERM)
"""What tells a sweep worker its parent may have died (see
:mod:`mnistexp.orchestration.workers`)."""
STOP_SIGNALS = tuple(dict.fromkeys((signal.SIGINT, signal.SIGTERM, PARENT_GONE_SIGNAL)))
"""Every signal that stops a run: held while a file and its status are written together."""


class ExitCode(IntEnum):
    """What a command exits with; signals follow the shell's 128 + signal number."""

    OK = 0  # done, or running elsewhere
    FAILED = 1  # a run failed or diverged
    BAD_INPUT = 2  # a usage, config or data problem (one line on stderr)
    SIGINT = 130  # Ctrl-C
    SIGTERM = 143  # kill, a batch system's time limit

    def __str__(self) -> str:  # the number, as IntEnum gives from 3.11 on
        return str(self.value)


class UsageError(Exception):
    """Bad input: a config, an option, a path or a data file. Message is one line."""


class ConfigError(UsageError):
    """A config file or override that cannot be turned into a valid ExperimentConfig."""


class DataError(UsageError):
    """MNIST files that are missing, corrupt, or cannot be fetched or cached."""


class RunError(UsageError):
    """A run folder that cannot be claimed, written or read."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a batch system's time limit) raised like Ctrl-C, so every handler of
    :class:`KeyboardInterrupt` marks its run ``interrupted``; only the exit code differs."""


def interrupt_exit_code(exc: BaseException | None) -> ExitCode:
    """The shell's convention: 128 + signal number, SIGINT (130) or SIGTERM (143)."""
    return ExitCode.SIGTERM if isinstance(exc, Terminated) else ExitCode.SIGINT


def interrupt_reason(exc: BaseException | None) -> str:
    """What stopped a run, for its status.json: the exception's own message if it has one."""
    if exc is not None and exc.args:
        return str(exc.args[0])
    return "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C (SIGINT)"
