"""Declared parameters of pluggable components (losses, target schemes, ...). A leaf module.

A component lists the keys of its config section that it reads as :class:`Param` objects.
Config validation checks each against its declaration, the one-line error messages quote the
declared rule, and keys a chosen component does not read are reset to their defaults before
the run's identity is hashed (they cannot change a number, so they must not split an
experiment in two).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Param:
    """One key of a component's section: its default, type and allowed values.

    ``low``/``high`` bound numbers (``low_open``/``high_open``: the bound itself is excluded);
    ``choices`` lists the allowed strings.
    """

    name: str
    default: Any
    type: type = float
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    help: str = ""

    def rule(self) -> str:
        """The allowed values in words, e.g. ``must be in [0, 1)`` or ``must be >= 0``."""
        if self.choices:
            return f"choose one of {', '.join(self.choices)}"
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"must be in {left}{_num(self.low)}, {_num(self.high)}{right}"
        if self.low is not None:
            return f"must be {'>' if self.low_open else '>='} {_num(self.low)}"
        if self.high is not None:
            return f"must be {'<' if self.high_open else '<='} {_num(self.high)}"
        return ""

    def allows(self, value: Any) -> bool:
        """True when ``value`` (already of ``type``) is within the declared range or choices."""
        if self.choices:
            return value in self.choices
        if self.low is not None and not (value > self.low if self.low_open else value >= self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)


def _num(x: float) -> str:
    return str(int(x)) if math.isfinite(x) and x == int(x) else f"{x:g}"


class Declares:
    """A component that reads declared parameters from its config section ``self.cfg``."""

    params: ClassVar[tuple[Param, ...]] = ()
    cfg: Any

    def param(self, name: str, absent: Any = None) -> Any:
        """The value of parameter ``name``: from the section, else its declared default (a
        section built in code may leave them out), else ``absent`` (a subclass that does not
        declare it)."""
        declared = {p.name: p.default for p in self.params}
        return getattr(self.cfg, name, declared.get(name, absent))
