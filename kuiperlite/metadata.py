"""Plugin metadata from code: the plugin json and each symbol's json and yaml.

Everything comes from the decorated functions: names, docstrings (summary
and per-parameter text) and type hints. The output is deterministic (same
code, same bytes) and holds only shapes eKuiper's installer and metadata
loaders accept.
"""

from __future__ import annotations

import ast
import enum
import os
import re
import typing
from typing import Any, Optional

import orjson

from . import docstrings
from .errors import DefinitionError
from .hints import unwrap_optional
from .plugin import Plugin
from .symbols import Param, Symbol
from .wire import FUNC, SINK, SOURCE

FOLDERS = {SOURCE: "sources", SINK: "sinks", FUNC: "functions"}

_SCALARS: dict[Any, tuple[str, str]] = {
    str: ("string", "text"),
    int: ("int", "text"),
    float: ("float", "text"),
    bool: ("bool", "radio"),
    dict: ("object", "textarea"),
}
_LIST_ITEMS = {str: "list_string", int: "list_int", dict: "list_object"}
_ZERO = {"string": "", "int": 0, "float": 0, "bool": False, "object": {}}


def label(name: str) -> str:
    """A readable label: ``send_timeout`` and ``sendTimeout`` become ``Send timeout``."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).replace("_", " ").split()
    text = " ".join(words).lower()
    return text[:1].upper() + text[1:]


def _text(value: str) -> dict[str, str]:
    """eKuiper's two-language text; kuiperlite writes the one it has into both."""
    return {"en_US": value, "zh_CN": value}


def field_type(hint: Any) -> Optional[tuple[str, str, Optional[list]]]:
    """``(type, control, values)`` of a config hint, or None when eKuiper has no such type."""
    hint = unwrap_optional(hint)
    if hint in _SCALARS:
        return (*_SCALARS[hint], None)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    choices: Optional[list] = None
    if origin is typing.Literal:
        choices = list(args)
    elif isinstance(hint, type) and issubclass(hint, enum.Enum):
        choices = [member.value for member in hint]
    if choices is not None:
        kinds = {type(c) for c in choices}
        base = _SCALARS.get(kinds.pop()) if len(kinds) == 1 else None
        return (base[0] if base else "string", "select", choices)
    if origin is dict:
        return ("object", "textarea", None)
    if origin is list and len(args) == 1 and unwrap_optional(args[0]) in _LIST_ITEMS:
        return (_LIST_ITEMS[unwrap_optional(args[0])], "list", None)
    return None


def _value_type(hint: Any) -> str:
    """The looser type names eKuiper uses for function arguments and results."""
    found = field_type(hint)
    if found is not None:
        return found[0]
    hint = unwrap_optional(hint)
    if hint is list or typing.get_origin(hint) is list:
        return "array"
    return "any"


def _column_hint(hint: Any) -> Any:
    """An aggregate receives a list per argument; the UI shows the column's type."""
    hint = unwrap_optional(hint)
    args = typing.get_args(hint)
    return args[0] if typing.get_origin(hint) is list and len(args) == 1 else Any


def _json_default(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


def _field(symbol: Symbol, param: Param, doc: docstrings.Docstring) -> dict[str, Any]:
    found = field_type(param.hint)
    if found is None:
        raise DefinitionError(symbol.where, (
            f"config parameter {param.name!r} has a type eKuiper cannot show "
            f"({getattr(param.hint, '__name__', param.hint)!r}); use str, int, float, bool, "
            "dict, list[str], list[int], list[dict], Literal[...] or an Enum"))
    kind, control, values = found
    if param.required:
        default: Any = [] if kind.startswith("list") else _ZERO.get(kind, "")
    else:
        default = _json_default(param.default)
    if isinstance(default, list) and default:
        # eKuiper reads a non-empty list default as nested field descriptors
        # and rejects the file; the real default stays in the yaml profile.
        default = []
    field: dict[str, Any] = {
        "name": param.name,
        "default": default,
        "optional": not param.required,
        "control": control,
        "type": kind,
        "hint": _text(doc.params.get(param.name, "")),
        "label": _text(label(param.name)),
    }
    if values is not None:
        field["values"] = values
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


def _node(symbol: Symbol, category: str) -> dict[str, Any]:
    return {"category": category, "icon": "iconPath",
            "label": _text(symbol.ui_label or label(symbol.name))}


def _doc(symbol: Symbol) -> docstrings.Docstring:
    return docstrings.parse(getattr(symbol.func, "__doc__", None))


def source_json(plugin: Plugin, symbol: Symbol) -> dict[str, Any]:
    """``sources/<name>.json``: about, the datasource, config fields and UI node."""
    doc = _doc(symbol)
    out: dict[str, Any] = {"about": _about(plugin, symbol.description), "libs": []}
    datasource = [p for p in symbol.positional if p != "ctx"]
    if datasource:
        out["dataSource"] = {"default": "", "hint": _text(doc.params.get(datasource[0], "")),
                             "label": _text(label(datasource[0]))}
    out["properties"] = {"default": [_field(symbol, p, doc) for p in symbol.config]}
    out["node"] = _node(symbol, "source")
    return out


def source_yaml(symbol: Symbol) -> str:
    """``sources/<name>.yaml``: the ``default`` profile with every default value."""
    defaults = [(p.name, _json_default(p.default)) for p in symbol.config if not p.required]
    if not defaults:
        return "default: {}\n"
    # JSON is valid YAML: each value is written as one JSON flow value.
    lines = [f"  {name}: {orjson.dumps(value).decode()}" for name, value in defaults]
    return "default:\n" + "\n".join(lines) + "\n"


def sink_json(plugin: Plugin, symbol: Symbol) -> dict[str, Any]:
    """``sinks/<name>.json``: about, config fields and UI node."""
    doc = _doc(symbol)
    return {"about": _about(plugin, symbol.description), "libs": [],
            "properties": [_field(symbol, p, doc) for p in symbol.config],
            "node": _node(symbol, "sink")}


def function_json(plugin: Plugin, symbol: Symbol) -> dict[str, Any]:
    """``functions/<name>.json``: about and one function entry."""
    doc = _doc(symbol)
    params = list(symbol.args) + ([symbol.varargs] if symbol.varargs else [])
    required = sum(1 for p in symbol.args if p.required)
    example = ", ".join(f"col{i + 1}" for i in range(required))
    entry: dict[str, Any] = {"name": symbol.name, "example": f"{symbol.name}({example})"}
    if symbol.aggregate:
        entry["aggregate"] = True
    entry["hint"] = _text(symbol.description)
    entry["args"] = [{
        "name": p.name,
        "optional": not p.required or p is symbol.varargs,
        "control": "field",
        "type": _value_type(_column_hint(p.hint) if symbol.aggregate else p.hint),
        "hint": _text(doc.params.get(p.name, "")),
        "label": _text(label(p.name)),
    } for p in params]
    entry["return"] = {"type": _value_type(symbol.returns), "hint": _text(doc.returns)}
    entry["node"] = _node(symbol, "function")
    return {"about": _about(plugin, symbol.description), "functions": [entry]}


def executable(plugin: Plugin) -> str:
    """The file eKuiper runs: the plugin file when it calls ``kuiperlite.run()``
    under ``if __name__ == "__main__":``, else a launcher written beside it."""
    path = plugin.path
    if path and calls_run(path):
        return os.path.basename(path)
    return f"{plugin.name}_main.py"


def calls_run(path: str) -> bool:
    """Whether a file calls ``run()`` (``kuiperlite.run`` or imported) in its main guard."""
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError):
        return False
    for node in tree.body:
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test) \
                and "__name__" in ast.unparse(node.test):
            for call in ast.walk(node):
                if isinstance(call, ast.Call) and ast.unparse(call.func) in (
                        "kuiperlite.run", "run"):
                    return True
    return False


def plugin_json(plugin: Plugin) -> dict[str, Any]:
    """``<name>.json``: what eKuiper's installer reads first."""
    out: dict[str, Any] = {
        "version": plugin.about.version,
        "language": "python",
        "executable": executable(plugin),
        "sources": list(plugin.sources),
        "sinks": list(plugin.sinks),
        "functions": list(plugin.functions),
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
        base = f"{FOLDERS[symbol.kind]}/{symbol.name}"
        if symbol.kind == SOURCE:
            out[f"{base}.json"] = dumps(source_json(plugin, symbol))
            out[f"{base}.yaml"] = source_yaml(symbol).encode()
        elif symbol.kind == SINK:
            out[f"{base}.json"] = dumps(sink_json(plugin, symbol))
        else:
            out[f"{base}.json"] = dumps(function_json(plugin, symbol))
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

