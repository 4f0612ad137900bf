"""Docstrings as descriptions: the summary and per-parameter text.

Reads the three common styles: Google (``Args:``), NumPy (``Parameters``
underlined with dashes) and reST (``:param name:``). Parsing never fails:
what it does not recognise it leaves out.
"""

from __future__ import annotations

import inspect
import re
from typing import NamedTuple, Optional

_GOOGLE_PARAMS = {"args", "arguments", "parameters", "params", "keyword args",
                  "keyword arguments", "other parameters"}
_GOOGLE_RETURNS = {"returns", "return", "yields", "yield"}
_GOOGLE_OTHER = {"raises", "raise", "examples", "example", "note", "notes", "attributes",
                 "warning", "warnings", "warns", "see also", "todo", "references", "methods"}
_NUMPY_PARAMS = {"parameters", "other parameters"}
_NUMPY_RETURNS = {"returns", "yields"}
_GOOGLE_HEADER = re.compile(r"^([A-Za-z][A-Za-z ]*):\s*$")
_GOOGLE_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")
_REST_FIELD = re.compile(r"^:(\w+)([^:]*):\s*(.*)$")
_REST_PARAM = {"param", "parameter", "arg", "argument", "key", "keyword"}
_TYPE_PREFIX = re.compile(r"^([\w.]+(\[[^\]]*\])?)\s*:\s*(.+)$")


class Docstring(NamedTuple):
    """What a docstring says about a function."""

    summary: str = ""
    params: dict[str, str] = {}  # read, never changed
    returns: str = ""


def _header(line: str) -> Optional[str]:
    """The section a Google header line opens (``Args:``), or None for other text."""
    match = _GOOGLE_HEADER.match(line.strip())
    name = match.group(1).lower() if match else ""
    return name if name in _GOOGLE_PARAMS | _GOOGLE_RETURNS | _GOOGLE_OTHER else None


def _fold(lines: list[str]) -> str:
    return " ".join(" ".join(lines).split())


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def parse(doc: Optional[str]) -> Docstring:
    """Parse a docstring written in Google, NumPy or reST style."""
    if not doc:
        return Docstring()
    lines = inspect.cleandoc(doc).splitlines()
    rest = [line for line in lines[1:] if line.strip()]
    if rest and _header(lines[0]) and all(_indent(line) == 0 for line in rest):
        # cleandoc took the section's indent away from a docstring opening with it.
        lines = [lines[0]] + [line if _header(line) else "    " + line for line in lines[1:]]
    summary: list[str] = []
    for i, line in enumerate(lines):
        if not line.strip() or _is_section_start(lines, i):
            break
        summary.append(line)
    params: dict[str, str] = {}
    returns: list[str] = []
    _google(lines, params, returns)
    _numpy(lines, params, returns)
    _rest(lines, params, returns)
    return Docstring(_fold(summary), params, _fold(returns))


def _is_rule(lines: list[str], i: int) -> bool:
    """Whether line ``i`` is a NumPy title's underline of dashes."""
    return 0 < i < len(lines) and set(lines[i].strip()) == {"-"}


def _is_section_start(lines: list[str], i: int) -> bool:
    stripped = lines[i].strip()
    return stripped.startswith(":") or bool(_header(stripped)) or _is_rule(lines, i + 1)


def _entries(block: list[str]) -> list[list[str]]:
    """Split an indented block into entries: a line at the block's indent starts one."""
    base = min((_indent(line) for line in block if line.strip()), default=0)
    entries: list[list[str]] = []
    for line in block:
        if not line.strip():
            continue
        if _indent(line) <= base or not entries:
            entries.append([line.strip()])
        else:
            entries[-1].append(line.strip())
    return entries


def _google(lines: list[str], params: dict[str, str], returns: list[str]) -> None:
    i = 0
    while i < len(lines):
        name = _header(lines[i])
        if name is None or _indent(lines[i]) > 0:
            i += 1
            continue
        block: list[str] = []
        i += 1
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > 0):
            block.append(lines[i])
            i += 1
        if name in _GOOGLE_PARAMS:
            for entry in _entries(block):
                match = _GOOGLE_ENTRY.match(entry[0])
                if match:
                    params.setdefault(match.group(1), _fold([match.group(3), *entry[1:]]))
        elif name in _GOOGLE_RETURNS and not returns:
            text = _fold([line.strip() for line in block])
            typed = _TYPE_PREFIX.match(text)
            returns.append(typed.group(3) if typed else text)


def _numpy(lines: list[str], params: dict[str, str], returns: list[str]) -> None:
    for i in range(len(lines) - 1):
        title = lines[i].strip().lower()
        if not _is_rule(lines, i + 1) or title not in _NUMPY_PARAMS | _NUMPY_RETURNS:
            continue
        block: list[str] = []
        for j in range(i + 2, len(lines)):
            if _is_rule(lines, j + 1) or _header(lines[j]):
                break  # the next section's title
            block.append(lines[j])
        for entry in _entries(block):
            head, text = entry[0], _fold(entry[1:])
            if title in _NUMPY_PARAMS:
                names = head.split(":", 1)[0]
                for name in names.split(","):
                    name = name.strip().lstrip("*")
                    if name.isidentifier():
                        params.setdefault(name, text)
            elif not returns:
                returns.append(text or head.split(":")[-1].strip())


def _rest(lines: list[str], params: dict[str, str], returns: list[str]) -> None:
    fields: list[list[str]] = []
    for line in lines:
        if line.strip().startswith(":"):
            fields.append([line.strip()])
        elif fields and line.strip() and _indent(line) > 0:
            fields[-1].append(line.strip())
        elif not line.strip():
            continue
        else:
            fields.append([])  # plain text ends a field
    for field in fields:
        match = _REST_FIELD.match(field[0]) if field else None
        if not match:
            continue
        kind, arg, text = match.group(1), match.group(2).split(), match.group(3)
        if kind in _REST_PARAM and arg:
            params.setdefault(arg[-1].lstrip("*"), _fold([text, *field[1:]]))
        elif kind in ("returns", "return") and not returns:
            returns.append(_fold([text, *field[1:]]))
