"""A griffe extension for the API reference: Sphinx roles in docstrings as plain code.

mnistexp's docstrings name other objects with Sphinx roles (``:func:`~mnistexp.x.load```),
which Markdown would print as they are. Each becomes inline code: the last part of the name
with a leading ``~`` (``load``), else the whole name. No cross-reference is made: most targets
are modules the reference does not document, and an unresolved one would fail the strict
build.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?[a-z]+:`(~?)([^`]+)`")


def plain(text: str) -> str:
    """``:class:`~a.b.C``` -> ```C```; ``:mod:`a.b``` -> ```a.b```."""
    return ROLE.sub(lambda m: f"`{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}`",
                    text)  # fmt: skip


class SphinxRoles(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain(obj.docstring.value)
