"""Plugin metadata from code: the plugin json and each symbol's json and yaml.

Everything comes from the decorated functions: names, docstrings (summary
and per-parameter text) and type hints. A source's or sink's config fields
are its own, then those of each connection it uses, described by the
connection's docstring. The output is deterministic (same code, same bytes)
and holds only shapes eKuiper's installer and metadata loaders accept.
"""

from __future__ import annotations

import enum
import os
import re
import typing
from typing import Any

import orjson

from ..declare import docstrings, hints
from ..declare.hints import Hint
from ..declare.kinds import KINDS, LAUNCHER_SUFFIX
from ..declare.params import Param
from ..declare.plugin import Plugin
from ..declare.symbols import AnySpec, FunctionSpec, SourceSpec
from ..protocol import layout


def label(name: str) -> str:
    """A readable label: ``send_timeout`` and ``sendTimeout`` become ``Send timeout``."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).replace("_", " ").split()
    text = " ".join(words).lower()
    return text[:1].upper() + text[1:]


def _text(value: str) -> dict[str, str]:
    """eKuiper's two-language text; kuiperlite writes the one it has into both."""
    return {"en_US": value, "zh_CN": value}


def _column(param: Param) -> Hint:
    """An aggregate receives a list per argument; the UI shows the column's type."""
    hint = hints.unwrap_optional(param.type.hint)
    args = typing.get_args(hint)
    if typing.get_origin(hint) is list and len(args) == 1:
        try:
            return hints.read(args[0])
        except hints.UnsupportedHint:
            pass
    return hints.ANY


def _json_default(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    if hints.is_record(type(value)):
        return {k: _json_default(v) for k, v in hints.record_fields(value).items()}
    if isinstance(value, list):
        return [_json_default(v) for v in value]
    return value


# Appended to a dynamic property's hint, phrased as eKuiper's own sinks explain
# theirs (etc/sinks/file.json: "..., or it can be a dynamic path, such as {{.field}}.txt").
DYNAMIC_HINT = "It can be dynamic: {{.field}} is replaced by that field of each record."


def _hint_text(doc: docstrings.Docstring, name: str, info: hints.Hint) -> dict[str, str]:
    """A field's hint: its docstring text, then a record's fields, then what a
    dynamic property takes."""
    parts = [doc.params.get(name, "")]
    fields = hints.describe_fields(info)
    if fields:
        parts.append(f"Fields: {fields}.")
    if info.dynamic:
        parts.append(DYNAMIC_HINT)
    return _text(" ".join(part for part in parts if part))


def _field(param: Param, doc: docstrings.Docstring) -> dict[str, Any]:
    info = param.type
    default: Any = info.zero if param.required else _json_default(param.default)
    if isinstance(default, list) and default:
        # eKuiper reads a non-empty list default as nested field descriptors
        # and rejects the file; the real default stays in the yaml profile.
        default = []
    field: dict[str, Any] = {
        "name": param.name,
        "default": default,
        "optional": not param.required,
        "control": info.control,
        "type": info.ui_type,
        "hint": _hint_text(doc, param.name, info),
        "label": _text(label(param.name)),
    }
    if info.choices is not None:
        field["values"] = info.choices
    return field


def _about(plugin: Plugin, description: str) -> dict[str, Any]:
    about = plugin.about
    out: dict[str, Any] = {
        "trial": False,
        "author": {"name": about.author, "email": about.email, "company": about.company,
                   "website": about.website},
    }
    if about.help_url:
        out["helpUrl"] = _text(about.help_url)
    out["description"] = _text(description)
    return out


def _node(symbol: AnySpec) -> dict[str, Any]:
    return {"category": symbol.kind.word, "icon": "iconPath",
            "label": _text(symbol.label or label(symbol.name))}


def _doc(func: Any) -> docstrings.Docstring:
    return docstrings.parse(getattr(func, "__doc__", None))


def _fields(symbol: AnySpec) -> list[dict[str, Any]]:
    """The config fields a rule sets: the symbol's own, then its connections'."""
    doc = _doc(symbol.func)
    out = [_field(p, doc) for p in symbol.config]
    for use in symbol.connections:
        doc = _doc(use.connection.func)
        out += [_field(p, doc) for p in use.connection.config]
    return out


def source_json(plugin: Plugin, symbol: SourceSpec) -> dict[str, Any]:
    """``sources/<name>.json``: about, the datasource, config fields and UI node."""
    doc = _doc(symbol.func)
    out: dict[str, Any] = {"about": _about(plugin, symbol.description), "libs": []}
    name = symbol.datasource_name
    if name is not None:
        out["dataSource"] = {"default": "", "hint": _text(doc.params.get(name, "")),
                             "label": _text(label(name))}
    out["properties"] = {"default": _fields(symbol)}
    out["node"] = _node(symbol)
    return out


def source_yaml(symbol: AnySpec) -> str:
    """``sources/<name>.yaml``: the ``default`` profile with every default value."""
    defaults = [(p.name, _json_default(p.default)) for p in symbol.fields if not p.required]
    if not defaults:
        return "default: {}\n"
    # JSON is valid YAML: each value is written as one JSON flow value.
    lines = [f"  {name}: {orjson.dumps(value).decode()}" for name, value in defaults]
    return "default:\n" + "\n".join(lines) + "\n"


def sink_json(plugin: Plugin, symbol: AnySpec) -> dict[str, Any]:
    """``sinks/<name>.json``: about, config fields and UI node."""
    return {"about": _about(plugin, symbol.description), "libs": [],
            "properties": _fields(symbol),
            "node": _node(symbol)}


def function_json(plugin: Plugin, symbol: FunctionSpec) -> dict[str, Any]:
    """``functions/<name>.json``: about and one function entry."""
    doc = _doc(symbol.func)
    params = list(symbol.params) + ([symbol.varargs] if symbol.varargs else [])
    required = sum(1 for p in symbol.params if p.required)
    example = ", ".join(f"col{i + 1}" for i in range(required))
    entry: dict[str, Any] = {"name": symbol.name, "example": f"{symbol.name}({example})"}
    if symbol.aggregate:
        entry["aggregate"] = True
    entry["hint"] = _text(symbol.description)
    entry["args"] = [{
        "name": p.name,
        "optional": not p.required or p is symbol.varargs,
        "control": "field",
        "type": (_column(p) if symbol.aggregate else p.type).value_type,
        "hint": _hint_text(doc, p.name, p.type),
        "label": _text(label(p.name)),
    } for p in params]
    entry["return"] = {"type": symbol.returns.value_type, "hint": _text(doc.returns)}
    entry["node"] = _node(symbol)
    return {"about": _about(plugin, symbol.description), "functions": [entry]}


def executable(plugin: Plugin) -> str:
    """The file eKuiper runs: the launcher written beside the plugin's module
    (``<module>_main.py``, a copy of :mod:`kuiperlite.launcher`)."""
    stem = os.path.splitext(os.path.basename(plugin.path))[0] if plugin.path else plugin.name
    return f"{stem}{LAUNCHER_SUFFIX}"


def plugin_json(plugin: Plugin) -> dict[str, Any]:
    """``<name>.json``: what eKuiper's installer reads first."""
    out: dict[str, Any] = {
        "version": plugin.about.version,
        "language": "python",
        "executable": executable(plugin),
        **{kind.folder: list(plugin.of_kind(kind)) for kind in KINDS},
    }
    if plugin.about.conda_env:
        out["virtualEnvType"] = "conda"
        out["env"] = plugin.about.conda_env
    return out


def dumps(value: Any) -> bytes:
    """Pretty, deterministic UTF-8 JSON with a final newline."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n"


def files(plugin: Plugin) -> dict[str, bytes]:
    """Every metadata file, by its path relative to the plugin's root, in a fixed order.

    Raises:
        DefinitionError: a symbol holds something eKuiper's metadata cannot express.
    """
    out = {f"{plugin.name}.json": dumps(plugin_json(plugin))}
    for symbol in plugin.symbols:
        entry = layout.zip_metadata(symbol.kind, symbol.name)
        if isinstance(symbol, SourceSpec):
            out[entry] = dumps(source_json(plugin, symbol))
            out[layout.zip_metadata(symbol.kind, symbol.name, ".yaml")] = \
                source_yaml(symbol).encode()
        elif isinstance(symbol, FunctionSpec):
            out[entry] = dumps(function_json(plugin, symbol))
        else:
            out[entry] = dumps(sink_json(plugin, symbol))
    return out


def write(plugin: Plugin, folder: str) -> list[str]:
    """Write the metadata files under ``folder``; returns their paths."""
    written = []
    for relative, content in files(plugin).items():
        path = os.path.join(folder, relative)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "wb") as f:
            f.write(content)
        written.append(path)
    return written

