"""A YAML reader that remembers where every value came from and refuses duplicate keys.

PyYAML silently keeps the last of two equal keys (yaml/pyyaml#165) and forgets positions once
it has built Python values; both matter for a clinician-facing knowledge base, where an error
must point at `file:line` and a duplicated threshold must never win silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from bonecds.errors import BonecdsError

__all__ = ["YamlDocument", "YamlProblem", "parse_yaml"]

Path = tuple[str | int, ...]


class YamlProblem(BonecdsError):
    """A YAML document that cannot be read: syntax, duplicate key, alias or non-string key."""

    def __init__(self, code: str, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line
        self.column = column


class _Loader(yaml.SafeLoader):
    """SafeLoader without the timestamp resolver: dates stay strings for pydantic to parse."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class YamlDocument:
    """Plain Python data plus the 1-based (line, column) of every mapping key and item."""

    data: Any
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def position(self, path: Path) -> tuple[int, int]:
        """The position of `path`, or of its closest ancestor that has one."""
        for end in range(len(path), -1, -1):
            found = self.positions.get(tuple(path[:end]))
            if found:
                return found
        return (1, 1)


def parse_yaml(
    text: str, max_depth: int | None = None, max_nodes: int | None = None
) -> YamlDocument:
    """Parse one YAML document; raise YamlProblem with a position for anything suspicious:
    syntax, control characters, aliases, unknown tags, nesting deeper than `max_depth`, more
    than `max_nodes` values."""
    _scan(text, max_depth, max_nodes)
    try:
        loader = _Loader(text)  # the reader refuses NUL and other control characters
        try:
            return _document(loader)
        finally:
            loader.dispose()
    except yaml.YAMLError as error:
        raise _syntax_problem(error) from None
    except RecursionError:
        raise YamlProblem("yaml-depth", "nested too deeply", 1, 1) from None
    except ValueError as error:  # an integer of thousands of digits
        message = str(error).splitlines()[0] if str(error) else "invalid value"
        raise YamlProblem("yaml-value", message, 1, 1) from None


def _document(loader: _Loader) -> YamlDocument:
    node = loader.get_single_node()
    positions: dict[Path, tuple[int, int]] = {}
    if node is None:
        return YamlDocument(None, positions)
    return YamlDocument(_Builder(loader, positions).build(node, ()), positions)


def _syntax_problem(error: yaml.YAMLError) -> YamlProblem:
    if not isinstance(error, yaml.MarkedYAMLError):  # a reader error: its first line says it
        return YamlProblem("yaml-syntax", str(error).split("\n")[0], 1, 1)
    mark: Any = error.problem_mark or error.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    message = str(error.problem or "invalid YAML")
    if error.context and error.context_mark:
        message += f" ({error.context} started at line {error.context_mark.line + 1})"
    return YamlProblem("yaml-syntax", message, line, column)


def _scan(text: str, max_depth: int | None, max_nodes: int | None) -> None:
    """Aliases are refused where they are used, so the error points at the copy, not the
    anchor; depth and size are checked on the event stream (libyaml's parser when present,
    fast), before the recursive, pure-Python composer could overflow the stack or take
    minutes. Syntax errors are left to the composer, whose messages the tests pin."""
    depth = 0
    try:
        for count, event in enumerate(yaml.parse(text, Loader=_FastLoader)):
            mark: Any = event.start_mark
            if isinstance(event, yaml.AliasEvent):
                message = "YAML anchors and aliases are not allowed; write the value out"
                raise YamlProblem("yaml-alias", message, mark.line + 1, mark.column + 1)
            if max_nodes is not None and count > 2 * max_nodes:
                message = f"more than {max_nodes} values; not a profile"
                raise YamlProblem("yaml-size", message, mark.line + 1, mark.column + 1)
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if max_depth is not None and depth > max_depth:
                    message = f"nested deeper than {max_depth} levels"
                    raise YamlProblem("yaml-depth", message, mark.line + 1, mark.column + 1)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return
    except UnicodeEncodeError:  # a lone surrogate, which libyaml cannot take
        raise YamlProblem("yaml-text", "text that is not valid Unicode", 1, 1) from None


# libyaml (C) parses an order of magnitude faster than the pure-Python parser, when installed.
_FastLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Builder:
    def __init__(self, loader: _Loader, positions: dict[Path, tuple[int, int]]) -> None:
        self.loader = loader
        self.positions = positions
        self.seen: set[int] = set()

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.positions.setdefault(path, _start(node))
        if id(node) in self.seen:
            line, column = _start(node)
            raise YamlProblem(
                "yaml-alias", "YAML anchors and aliases are not allowed", line, column
            )
        self.seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._construct(node)

    def _construct(self, node: yaml.Node) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError:
            raise
        except Exception:  # a constructor failing on a tagged value (`!!timestamp 1`)
            line, column = _start(node)
            message = f"cannot read a value tagged '{node.tag}'"
            raise YamlProblem("yaml-value", message, line, column) from None

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line, column = _start(key_node)
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise YamlProblem("yaml-alias", "YAML merge keys are not allowed", line, column)
            key = self._construct(key_node)
            if not isinstance(key, str):
                raise YamlProblem("yaml-key", f"key {key!r} must be a string", line, column)
            if key in result:
                raise YamlProblem("duplicate-key", f"duplicate key '{key}'", line, column)
            self.positions[(*path, key)] = (line, column)
            result[key] = self.build(value_node, (*path, key))
            self.positions[(*path, key)] = (line, column)
        return result


def _start(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)
