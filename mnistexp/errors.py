"""Exceptions that mean "the user gave us something we cannot use".

The CLI turns every :class:`UsageError` into one line on stderr and exit code 2; anything
else escaping a command is a bug and keeps its traceback.
"""


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


def interrupt_exit_code(exc: BaseException | None) -> int:
    """The shell's convention: 128 + signal number, 130 for SIGINT and 143 for SIGTERM."""
    return 143 if isinstance(exc, Terminated) else 130


def interrupt_reason(exc: BaseException | None) -> str:
    """What stopped a run, for its status.json: the exception's own message if it has one."""
    if exc is not None and exc.args:
        return str(exc.args[0])
    return "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C (SIGINT)"
