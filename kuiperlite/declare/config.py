"""A start command's config bound to a symbol's keyword-only parameters.

Declared keys are converted by their hints, without loss; the value of a
dynamic parameter that holds ``{{`` becomes a :class:`~kuiperlite.declare.dynamic.Template`
instead, rendered and converted per record. eKuiper adds keys of its own (a
stream's options, a sink's common properties). Every key the
symbol does not declare goes to its ``**config`` parameter if it has one,
and is otherwise ignored; one that is not eKuiper's and looks like a
misspelt parameter gets a warning that names the parameter.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from ..errors import ConfigError
from . import dynamic
from .hints import Hint, Mismatch

log = logging.getLogger("kuiperlite")

# Keys eKuiper itself puts in a source's or sink's config.
EKUIPER_KEYS = frozenset({
    # stream options (internal/topo/node/conf/source.go) and what a source node adds
    "format", "key", "datasource", "schemaId", "delimiter", "retainSize", "strictValidation",
    "timestamp", "timestampFormat", "isTable", "connectionSelector",
    # a sink action's common properties (internal/topo/node/props.go)
    "requireAck", "bufferLength", "runAsync", "omitIfEmpty", "sendSingle", "dataTemplate",
    "fields", "excludeFields", "dataField", "batchSize", "lingerInterval", "compression",
    "compressionProps", "encryption", "encProps", "hasHeader",
    "concurrency", "enableCache", "memoryCacheThreshold", "maxDiskCache", "bufferPageSize",
    "resendInterval", "cleanCacheAtStop", "resendAlterQueue", "resendPriority",
    "resendIndicatorField", "resendDestination",
})


class Field(Protocol):
    """A keyword-only parameter: its name, type and default (see ``params.Param``)."""

    @property
    def name(self) -> str: ...
    @property
    def type(self) -> Hint: ...
    @property
    def required(self) -> bool: ...
    @property
    def default(self) -> Any: ...


def bind(described: str, fields: Sequence[Field], extra: bool,
         raw: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for a symbol from a start command's config.

    Args:
        described: the symbol, for messages: ``source 'pyjson'``.
        fields: its keyword-only parameters.
        extra: it takes a ``**config`` parameter for the other keys.
        raw: the config the rule set.

    Raises:
        ConfigError: a value does not fit its hint, a dynamic value holds
            template syntax other than field paths, or a required key is missing.
    """
    kwargs: dict[str, Any] = {}
    for field in fields:
        if field.name in raw:
            value = raw[field.name]
        elif field.required:
            raise ConfigError(f"The {described} needs config {field.name!r} "
                              f"({field.type.phrase}), but the rule did not set it.")
        elif field.type.dynamic and dynamic.is_template(field.default):
            value = field.default  # rendered per record like a value the rule set
        else:
            continue
        convert = field.type.convert
        if field.type.dynamic and dynamic.is_template(value):
            try:
                value = dynamic.parse(field.name, value, convert, described)
            except ValueError as err:
                raise ConfigError(f"Config {field.name!r} of the {described}: {err}.") from None
        elif convert is not None:
            try:
                value = convert(value)
            except Mismatch as err:
                raise ConfigError(f"Config {field.name!r} of the {described} {err}.") from None
        kwargs[field.name] = value
    declared = [field.name for field in fields]
    for key, value in raw.items():
        if key in declared:
            continue
        if extra:
            kwargs[key] = value
            continue
        if key in EKUIPER_KEYS:
            continue
        import difflib  # only for a key that is no one's

        close = difflib.get_close_matches(key, declared, n=1, cutoff=0.75)
        if close:
            log.warning("config %r of the %s is not one of its parameters, and is ignored; "
                        "did you mean %r?", key, described, close[0])
    return kwargs
