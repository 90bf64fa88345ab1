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
