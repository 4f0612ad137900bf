"""Go's values as text/template sees them, printed as Go's fmt prints them, and the
functions eKuiper's templates call (Go's builtins, sprig's, eKuiper's own)."""

from __future__ import annotations

import base64
import math
import re
from typing import Any, Callable, NamedTuple, Optional

from ..declare.dynamic import go_float
from .gowire import go_json

# Go type names, as Go's error messages spell them.
IFACE = "interface {}"
MAP = "map[string]interface {}"
ROWS = "[]map[string]interface {}"  # a rule's output when sendSingle is off
LIST = "[]interface {}"

# What eKuiper's template function map holds besides the host's own subset: Go's
# builtins and sprig 3's functions. A name in neither is Go's "not defined" error.
# (Word lists read best as text.)
_GO_BUILTINS = frozenset("""
    and call html index slice js len not or print printf println urlquery eq ge gt le lt ne
    """.split())  # noqa: SIM905
_SPRIG = frozenset("""
    hello ago date date_in_zone date_modify dateInZone dateModify duration durationRound
    htmlDate htmlDateInZone must_date_modify mustDateModify mustToDate now toDate unixEpoch
    abbrev abbrevboth trunc trim upper lower title untitle substr repeat trimall trimAll
    trimSuffix trimPrefix nospace initials randAlphaNum randAlpha randAscii randNumeric
    randSeededNumeric swapcase shuffle snakecase camelcase kebabcase wrap wrapWith contains
    hasPrefix hasSuffix quote squote cat indent nindent replace plural sha1sum sha256sum
    adler32sum toString atoi int64 int float64 seq toDecimal split splitList splitn toStrings
    until untilStep add1 add sub div mod mul randInt add1f addf subf divf mulf biggest max min
    maxf minf ceil floor round join sortAlpha default empty coalesce all any compact
    mustCompact fromJson toJson toPrettyJson toRawJson mustFromJson mustToJson
    mustToPrettyJson mustToRawJson ternary deepCopy mustDeepCopy typeOf typeIs typeIsLike
    kindOf kindIs deepEqual env expandenv getHostByName base dir clean ext isAbs osBase
    osClean osDir osExt osIsAbs b64enc b64dec b32enc b32dec tuple list dict get set unset
    hasKey pluck keys pick omit merge mergeOverwrite mustMerge mustMergeOverwrite values
    append push mustAppend mustPush prepend mustPrepend first mustFirst rest mustRest last
    mustLast initial mustInitial reverse mustReverse uniq mustUniq without mustWithout has
    mustHas slice mustSlice concat dig chunk mustChunk bcrypt htpasswd genPrivateKey
    derivePassword buildCustomCert genCA genCAWithKey genSelfSignedCert
    genSelfSignedCertWithKey genSignedCert genSignedCertWithKey encryptAES decryptAES
    randBytes uuidv4 semver semverCompare fail regexMatch mustRegexMatch regexFindAll
    mustRegexFindAll regexFind mustRegexFind regexReplaceAll mustRegexReplaceAll
    regexReplaceAllLiteral mustRegexReplaceAllLiteral regexSplit mustRegexSplit
    regexQuoteMeta urlParse urlJoin""".split())  # noqa: SIM905
_EKUIPER_FUNCS = frozenset({"json", "base64", "prop"})
KNOWN_FUNCTIONS = _GO_BUILTINS | _SPRIG | _EKUIPER_FUNCS


class TemplateError(Exception):
    """A template eKuiper's Go code fails on; ``str(err)`` is Go's error text."""


class ParseError(TemplateError):
    """The template does not parse: eKuiper refuses the rule with this text."""


class ExecError(TemplateError):
    """The template fails for one record.

    Attributes:
        partial: what it wrote before failing (Go leaves it in the writer).
    """

    def __init__(self, text: str, partial: str) -> None:
        super().__init__(text)
        self.partial = partial


class Unsupported(ValueError):
    """Go's templates have this, and the host's subset does not: one sentence saying so."""


# --------------------------------------------------------------------- values

class V(NamedTuple):
    """A value as Go's reflection sees it: the Python value and its Go type.

    ``typ`` is ``""`` for Go's invalid value (a missing key), and
    :data:`IFACE` for a value held in an ``interface {}`` (a map's element),
    whose ``value`` is None when the interface is nil.
    """

    value: Any
    typ: str


INVALID = V(None, "")
MISSING_FINAL = V(None, "final")  # no value piped in from a previous command


def go_type(value: Any) -> str:
    """The Go type ``encoding/json`` decodes a value to (``""`` for null)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return MAP
    if isinstance(value, list):
        return LIST
    raise TypeError(f"not a JSON value: {value!r}")


def concrete_value(v: V) -> V:
    """The value inside an interface (Go's ``indirectInterface``); nil is invalid."""
    if v.typ != IFACE:
        return v
    return INVALID if v.value is None else V(v.value, go_type(v.value))


def sprint(value: Any) -> str:
    """A value as Go's ``fmt`` prints it with ``%v``: ``1e+06``, ``map[a:1 b:x]``,
    ``[1 a <nil>]``, ``<nil>``."""
    return _format(value, "v", top=False)


def go_float_fixed(value: float) -> str:
    """A float64 as Go's ``strconv.FormatFloat(f, 'f', -1, 64)``: shortest
    digits, never an exponent (``1000000``, ``0.0000001``)."""
    if not math.isfinite(value):
        return go_float(value)
    text = repr(value)
    sign = "-" if text[0] == "-" else ""
    mantissa, _, exp = text.lstrip("-").partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction.rstrip("0")
    point = len(whole) + int(exp or 0)  # where the point goes among the digits
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped
    if not digits:
        return sign + "0"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _leaf(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    return str(value)


def _format(value: Any, verb: str, top: bool, typ: str = "") -> str:
    """One operand of fmt's verb ``v``, ``s`` or ``d``; a wrong verb prints
    Go's ``%!d(float64=3)``. ``top`` is an argument itself rather than an
    element, where nil prints ``<nil>`` whatever the verb."""
    if value is None:
        return f"%!{verb}(<nil>)" if top and verb != "v" else "<nil>"
    if isinstance(value, dict):
        inner = " ".join(f"{_format(k, verb, False)}:{_format(value[k], verb, False)}"
                         for k in sorted(value))
        return f"map[{inner}]"
    if isinstance(value, list):
        return "[" + " ".join(_format(item, verb, False) for item in value) + "]"
    if verb == "v" or verb == "s" and isinstance(value, str) \
            or verb == "d" and isinstance(value, int) and not isinstance(value, bool):
        return _leaf(value)
    return f"%!{verb}({typ or go_type(value)}={_leaf(value)})"


_VERB = re.compile(r"%(.)", re.S)


def sprintf(fmt: str, args: list[V]) -> str:
    """Go's ``fmt.Sprintf`` for the verbs ``%v``, ``%s``, ``%d`` and ``%%``.

    Raises:
        Unsupported: another verb, or a flag, width or precision.
    """
    out: list[str] = []
    used = 0
    pos = 0
    for found in _VERB.finditer(fmt):
        out.append(fmt[pos:found.start()])
        pos = found.end()
        verb = found.group(1)
        if verb == "%":
            out.append("%")
            continue
        if verb not in "vsd":
            raise Unsupported(f"printf {fmt!r}: the host's templates support the verbs %v, %s "
                              f"and %d, without flags, width or precision, not %{verb}.")
        if used >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[used]
        used += 1
        out.append(_format(arg.value, verb, True, arg.typ))
    rest = fmt[pos:]
    if rest.endswith("%"):
        raise Unsupported(f"printf {fmt!r}: a lone % at the end.")
    out.append(rest)
    if used < len(args):
        extra = ", ".join(f"{a.typ}={_format(a.value, 'v', True)}" if a.typ else "<nil>"
                          for a in args[used:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


# ------------------------------------------------------------------ functions

class FuncError(Exception):
    """A function's own error: Go reports ``error calling NAME: <this>``."""


class Func(NamedTuple):
    """A template function: its Go parameter kinds, variadic kind and result type.

    Kinds: ``string`` (a Go string), ``any`` (``interface {}``), ``value``
    (``reflect.Value``, which Go's builtins take as they are).
    """

    params: tuple[str, ...]
    variadic: Optional[str]
    result: str  # the Go result type; "" when the function returns a V itself
    call: Callable[..., Any]


def _upper(s: V) -> str:
    return "".join(c.upper() if len(c.upper()) == 1 else c for c in s.value)


def _lower(s: V) -> str:
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in s.value)


def _to_string(v: V) -> str:
    return v.value if isinstance(v.value, str) else sprint(v.value)


def _json(v: V) -> str:
    return go_json(v.value).decode()


def _empty(v: V) -> bool:
    value = v.value
    if value is None:
        return True
    if isinstance(value, (str, list, dict)):
        return len(value) == 0
    return not value


def _default(fallback: V, *given: V) -> V:
    if not given or _empty(given[0]):
        return V(fallback.value, IFACE)
    return V(given[0].value, IFACE)


def _base64(v: V) -> str:
    value = v.value
    if value is None:
        raise FuncError("based64 error for nil")
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = go_float_fixed(value)
    elif isinstance(value, str):
        text = value
    elif isinstance(value, dict):
        return base64.b64encode(go_json(value)).decode()
    else:
        raise FuncError("Unsupported data type slice for base64 function.")
    return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode()


def _prop(key: V) -> str:
    name: str = key.value  # eKuiper's props store is empty in the host: prop gives the key
    return name


def _index(item: V, *indexes: V) -> V:
    item = concrete_value(item)
    if item is INVALID or not item.typ:
        raise FuncError("index of untyped nil")
    for index in indexes:
        index = concrete_value(index)
        if item.typ == IFACE:
            if item.value is None:
                raise FuncError("index of nil pointer")
            item = concrete_value(item)
        if isinstance(item.value, list):
            if not index.typ:
                raise FuncError("cannot index slice/array with nil")
            if index.typ != "int":
                raise FuncError(f"cannot index slice/array with type {index.typ}")
            if not 0 <= index.value <= len(item.value):
                raise FuncError(f"index out of range: {index.value}")
            if index.value == len(item.value):  # Go's check lets it through to reflect's
                raise FuncError("reflect: slice index out of range")
            element = item.value[index.value]
            item = V(element, MAP) if item.typ == ROWS else V(element, IFACE)
        elif isinstance(item.value, dict):
            if not index.typ:
                raise FuncError("value is nil; should be of type string")
            if index.typ != "string":
                raise FuncError(f"value has type {index.typ}; should be string")
            item = V(item.value.get(index.value), IFACE)
        elif item.typ == "string":
            raise Unsupported("The host's templates do not index strings.")
        else:
            raise FuncError(f"can't index item of type {item.typ}")
    return item


def _len(item: V) -> int:
    if item.typ == IFACE and item.value is None:
        raise FuncError("len of nil pointer")
    item = concrete_value(item)
    if not item.typ:
        raise FuncError("reflect: call of reflect.Value.Type on zero Value")
    if isinstance(item.value, (list, dict)):
        return len(item.value)
    if isinstance(item.value, str):
        return len(item.value.encode("utf-8", "surrogatepass"))
    raise FuncError(f"len of type {item.typ}")


def _printf(fmt: V, *args: V) -> str:
    return sprintf(fmt.value, list(args))


FUNCTIONS: dict[str, Func] = {
    "index": Func(("value",), "value", "", _index),
    "len": Func(("value",), None, "int", _len),
    "printf": Func(("string",), "any", "string", _printf),
    "json": Func(("any",), None, "string", _json),
    "toJson": Func(("any",), None, "string", _json),
    "base64": Func(("any",), None, "string", _base64),
    "prop": Func(("string",), None, "string", _prop),
    "toString": Func(("any",), None, "string", _to_string),
    "upper": Func(("string",), None, "string", _upper),
    "lower": Func(("string",), None, "string", _lower),
    "default": Func(("any",), "any", "", _default),
}
