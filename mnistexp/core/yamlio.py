"""Reading YAML that users wrote: safe, bounded, and every problem one line.

``yaml.safe_load`` semantics only (no tags that build Python objects), and bounded: files over 1
MiB, documents nested deeper than 32 levels or holding more than 10,000 values once aliases are
expanded (an "alias bomb"), duplicate keys and bytes that are not UTF-8 are refused with one
:class:`ConfigError` line. Config files (:mod:`mnistexp.config.loading`) and sweep files
(:mod:`mnistexp.orchestration.sweep`) are both read here. Messages never contain a line break: text
from the input is shown escaped and shortened (:func:`one_line`, :func:`show`).
"""

from __future__ import annotations

import collections.abc
from pathlib import Path
from typing import Any

import yaml

from mnistexp.core.bounded import FileTooLarge, NotRegularFile, read_bounded
from mnistexp.core.errors import ConfigError

MAX_YAML_BYTES = 1 << 20  # a config is a few hundred bytes; refuse anything past 1 MiB
MAX_YAML_DEPTH = 32  # nesting levels; deeper documents are refused, never a RecursionError
MAX_YAML_NODES = 10_000  # nodes after alias expansion: "billion laughs" documents are refused


def read_yaml_mapping(path: Path, what: str, example: str) -> dict[str, Any]:
    """The mapping in the YAML file ``path``, read as :func:`safe_yaml` reads text; every
    problem (including a file without any key) is one ConfigError line naming the file.
    ``what`` names the kind of file and ``example`` suggests a first key for an empty one."""
    where = one_line(str(path))
    raw = safe_yaml(_read_text(path, what), where)
    if raw is None:  # nothing but whitespace and comments: a truncated or wrong file
        raise ConfigError(f"{where}: empty {what} file; state at least one key, e.g. {example}")
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a {what} must be a mapping of keys, got {kind(raw)}")
    return raw


def _read_text(path: Path, what: str) -> str:
    """The UTF-8 text of ``path``, refusing folders, huge files and undecodable bytes."""
    where = one_line(str(path))
    try:
        if path.is_dir():
            raise ConfigError(f"{where}: is a folder, not a {what} file")
        blob = read_bounded(path, MAX_YAML_BYTES)  # a FIFO or a device is never read
    except NotRegularFile:
        raise ConfigError(f"{where}: not a regular file, so not a {what} file") from None
    except FileTooLarge:
        raise ConfigError(
            f"{where}: larger than {MAX_YAML_BYTES >> 20} MiB, too big for a {what} file"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {what} file ({exc.strerror or exc})") from None
    try:
        return blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{where}: not UTF-8 text (byte 0x{blob[exc.start]:02x} at offset {exc.start})"
        ) from None


def safe_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load`` with duplicate keys refused and bounded depth and alias expansion.

    Errors are one ConfigError line starting with ``where``: the YAML line and column when
    PyYAML knows them, the byte position for characters YAML does not allow.
    """
    try:
        loader = _StrictLoader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = one_line(exc.problem or exc.context or "invalid YAML")
        raise ConfigError(f"{where}: malformed YAML{at}: {problem}") from None
    except yaml.reader.ReaderError as exc:
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise ConfigError(
            f"{where}: malformed YAML: character #x{char:02x} at position {exc.position} "
            "is not allowed in YAML"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: malformed YAML: {one_line(str(exc))[:200]}") from None
    except (ValueError, OverflowError) as exc:  # e.g. a 5000-digit integer, 2001-13-45
        reason = one_line(str(exc).split(";")[0])[:200]
        raise ConfigError(f"{where}: a value cannot be read: {reason}") from None
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply") from None


_MERGE_TAG = "tag:yaml.org,2002:merge"


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader that also refuses duplicate keys, nesting deeper than
    :data:`MAX_YAML_DEPTH` and more than :data:`MAX_YAML_NODES` nodes once aliases are
    expanded (each node's expanded size is computed once, bottom-up)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Any, index: Any) -> yaml.Node:
        is_alias = self.check_event(yaml.AliasEvent)
        if self._depth >= MAX_YAML_DEPTH:
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(
                None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", mark
            )
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        # PyYAML returns a node or raises; its stub's "Node | None" only mirrors the signature.
        assert node is not None
        size = self._sizes.get(id(node)) if is_alias else self._size_of(node)
        if size is None:
            raise yaml.composer.ComposerError(
                None, None, "an alias refers to the collection that contains it", node.start_mark
            )
        if size > MAX_YAML_NODES:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"more than {MAX_YAML_NODES} values once aliases are expanded",
                node.start_mark,
            )
        self._sizes[id(node)] = size
        return node

    def _size_of(self, node: yaml.Node) -> int | None:
        if isinstance(node, yaml.ScalarNode):
            return 1
        children = (
            node.value
            if isinstance(node, yaml.SequenceNode)
            else [n for pair in node.value for n in pair]
        )
        total = 1
        for child in children:
            size = self._sizes.get(id(child))
            if size is None:
                return None
            total += size
        return total

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue  # "<<: *base" then overriding keys is how merges work
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, collections.abc.Hashable):
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"duplicate key {clip(str(key))}", key_node.start_mark
                        )
                    seen.add(key)
        # The stub wants a MappingNode, but PyYAML takes any node here and raises its own
        # ConstructorError for a non-mapping one (e.g. a scalar tagged !!map).
        return super().construct_mapping(node, deep=deep)  # type: ignore[arg-type]

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG and isinstance(value_node, yaml.SequenceNode):
                self._refuse_merge_conflicts(value_node)
        super().flatten_mapping(node)

    def _refuse_merge_conflicts(self, sequence: yaml.SequenceNode) -> None:
        """Refuse a key that two mappings of one merge sequence (``<<: [*a, *b]``) both hold:
        the YAML merge spec and PyYAML up to 6.0.3 take the first, PyYAML 6.0.4 the last, so
        the config would mean different things on different installs."""
        seen: set[tuple[str, Any]] = set()
        for mapping in sequence.value:
            if not isinstance(mapping, yaml.MappingNode):
                continue  # PyYAML's own error names it
            self.flatten_mapping(mapping)  # its own merges first (flattening twice is a no-op)
            for key_node, _ in mapping.value:
                key = (key_node.tag, key_node.value)
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"{clip(str(key_node.value))} is in more than one mapping of a merge "
                        "sequence, and YAML versions disagree on which one wins; give it in "
                        "one of them, or after the '<<:' line",
                        key_node.start_mark,
                    )
                seen.add(key)


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped, so that an error
    message built from user input stays one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def clip(text: str, limit: int = 80) -> str:
    """``text`` as an error message shows input: on one line (:func:`one_line`) and cut to
    ``limit`` characters, so a 100,000-character key is not echoed whole."""
    text = one_line(text[: limit * 4])  # escaping at most quadruples a character
    return text if len(text) <= limit else text[: limit - 3] + "..."


def show(value: Any, limit: int = 80) -> str:
    """``repr(value)`` on one line, cut to ``limit`` characters, for error messages."""
    try:
        return clip(repr(value), limit)
    except ValueError:  # an int too long to print (over 4300 digits)
        return f"<an integer of about {value.bit_length() * 3 // 10} digits>"


def kind(value: Any) -> str:
    """How a wrong value is named in a message: ``a list`` or ``str 'abc'``."""
    return "a list" if isinstance(value, list) else f"{type(value).__name__} {show(value)}"
