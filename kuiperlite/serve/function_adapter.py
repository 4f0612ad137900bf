"""The function adapter: eKuiper's Validate, Exec and IsAggregate requests for one
function, answered by its user code."""

from __future__ import annotations

import logging
from typing import Any, Optional

from ..declare.context import Context
from ..declare.hints import ANY, Converter, Mismatch, describe_value, unwrap_optional
from ..declare.hints import read as read_hint
from ..declare.kinds import FUNCTION
from ..declare.params import ASYNC, Param
from ..declare.state import Scope, State
from ..declare.symbols import FunctionSpec
from ..errors import ArgumentError, ProtocolError, Stopped, error_text
from ..protocol import wire
from .stores import Stores
from .usercode import Loop

# The SQL literals a parameter takes at Validate, by the looser type of its hint, as
# eKuiper's own functions take them (its ValidateOneStrArg, ValidateOneNumberArg,
# ValidateTwoIntArg, had_changed): a string parameter no number, time unit or
# boolean; a number parameter no string, time unit or boolean, but an integer; an
# integer parameter no number with a fraction either; a boolean parameter only true
# or false. Others take any literal their converter takes. Time units and whole
# numbers reach Validate as integers, which is what these rules see of them.
LITERALS = {"string": {"string"}, "int": {"integer"}, "float": {"integer", "number"},
            "bool": {"boolean"}}

# ast.Token of the operations that are true or false (eKuiper's ast.IsBooleanArg):
# AND, OR, the comparisons, IN, NOT IN, BETWEEN, NOT BETWEEN, LIKE, NOT LIKE.
CONDITIONS = frozenset({20, 21, 22, 23, 24, 25, 26, 27, 30, 32, 33, 34, 35, 36})


def is_condition(expr: Any) -> bool:
    """Whether a Validate argument is an operation that is true or false (in
    parentheses too), such as ``x > 1``."""
    while type(expr) is dict and len(expr) == 1 and "Expr" in expr:
        expr = expr["Expr"]
    return type(expr) is dict and expr.keys() == {"OP", "LHS", "RHS"} and \
        expr["OP"] in CONDITIONS


def _literal_kind(value: Any) -> str:
    """The kind of SQL literal a value Validate receives was: a whole number is an integer."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    return "integer" if isinstance(value, int) else "number"


class FunctionAdapter:
    """Answers eKuiper's Validate, Exec and IsAggregate requests for one function."""

    MAX_CONTEXTS = 4096

    def __init__(self, spec: FunctionSpec, stores: Optional[Stores] = None) -> None:
        self.spec = spec
        self.stores = stores
        self._contexts: dict[str, Context] = {}
        self._loop = Loop()
        self._least, self._most = spec.arg_range
        params = [*spec.params, *([spec.varargs] if spec.varargs else [])]
        # Per position: the converter, and the type a value already has when it
        # needs none (a str for a str hint), so the converter is called only
        # for values that differ.
        self._slots = [(p.type.convert, p.type.exact, p) for p in params]
        self._convert_any = any(p.type.convert is not None for p in params)
        self.log = Context(spec.name, FUNCTION).logger

    def handle(self, raw: bytes) -> bytes:
        """One request in, one reply out; never raises."""
        try:
            name, args = wire.decode_function_call(raw)
        except ProtocolError as err:
            return wire.encode_reply(False, str(err))
        if name == "Exec":
            if not args or type(args[-1]) is not str:
                return wire.encode_reply(False, "Exec needs the function meta as its last "
                                         "argument, a JSON string, got "
                                         f"{describe_value(args[-1]) if args else 'nothing'}.")
            meta = args.pop()  # the list was just decoded: it is ours to change
            try:
                return wire.encode_reply(True, self.call(args, meta))
            except (ArgumentError, ProtocolError) as err:
                return wire.encode_reply(False, str(err))
            except Stopped:
                return wire.encode_reply(False, f"The {self.spec.described} is shutting down.")
            except BaseException as err:
                self._logger(meta).exception("failed")
                return wire.encode_reply(False, f"{self.spec.name}() raised {error_text(err)}")
        if name == "Validate":
            error = self.validate(args)
            return wire.encode_reply(error is None, error or "")
        if name == "IsAggregate":
            return wire.encode_reply(True, self.spec.aggregate)
        return wire.encode_reply(
            False, f"Unknown function request {name!r}; expected Validate, Exec or IsAggregate.")

    def validate(self, args: list[Any]) -> Optional[str]:
        """Validate's answer for these SQL argument expressions: None, or why not.

        It refuses a wrong count; a literal, or a condition, that a parameter
        of its type does not take by eKuiper's rules for its own functions
        (:data:`LITERALS`: ``revert(123)`` for a string, ``celsius('70')``
        for a number); and a literal its converter refuses (``'c'`` for
        ``Literal['C', 'F']``, ``3`` for a list), in the sentence Exec gives.
        It accepts whatever only the running rule knows, whose values Exec
        converts (:func:`kuiperlite.protocol.wire.literal_values` reads the literals).
        """
        error = self._count_error(len(args))
        if error is not None:
            return error
        for i, arg in enumerate(args):
            error = self._literal_error(i, arg)
            if error is not None:
                return error
        return None

    def _literal_error(self, i: int, arg: Any) -> Optional[str]:
        """Why argument ``i`` is refused, when it is a literal or a condition."""
        convert, _exact, param = self._slot(i)
        values = wire.literal_values(arg)
        condition = not values and is_condition(arg)
        if not values and not condition:
            return None
        # An aggregate receives the literal once per row of its window: its items.
        aggregate = self.spec.aggregate
        rule = (param.type.item if aggregate else param.type) or ANY
        kinds = LITERALS.get(rule.value_type)
        if condition:
            if kinds is None or "boolean" in kinds:
                return None
            got = "a condition, which is true or false"
        else:
            value = values[0]
            if convert is not None:
                try:
                    convert([value] if aggregate else value)
                except Mismatch as err:
                    return self._mismatch(i, param, err)
            if kinds is None or _literal_kind(value) in kinds:
                return None
            got = describe_value(value)
        expected = read_hint(unwrap_optional(rule.hint)).phrase  # a literal is never null
        if aggregate:
            got = f"a list (item 0 must be {expected}, got {got})"
            expected = param.type.phrase
        return f"Argument {i + 1} ({param.name}) of {self.spec.name}() must be {expected}, " \
               f"got {got}."

    def _count_error(self, count: int) -> Optional[str]:
        """The error text for a wrong argument count, else None."""
        if self._least <= count and (self._most is None or count <= self._most):
            return None
        names = [p.name for p in self.spec.params]
        if self.spec.varargs is not None:
            names.append("*" + self.spec.varargs.name)
            expected = f"at least {self._least}"
        elif self._least == self._most:
            expected = f"exactly {self._least}"
        else:
            expected = f"{self._least} to {self._most}"
        noun = "argument" if expected.endswith(" 1") else "arguments"
        listed = f" ({', '.join(names)})" if names else ""
        return f"{self.spec.name}() takes {expected} {noun}{listed} but got {count}."

    def call(self, values: list[Any], meta: Any = None) -> Any:
        """Run the function on SQL values as Exec does.

        Args:
            values: the SQL arguments, decoded from JSON.
            meta: the FuncMeta JSON string eKuiper appends (or a Context).

        Raises:
            ArgumentError: the values do not fit the parameters.
        """
        error = self._count_error(len(values))
        if error is not None:
            raise ArgumentError(error)
        if self._convert_any:
            values = self._convert(values)
        spec = self.spec
        if spec.context_index is not None:
            values = list(values)
            values.insert(spec.context_index, self.context(meta))
        if spec.style == ASYNC:
            return self._loop.run(spec.func(*values))
        return spec.func(*values)

    def _convert(self, values: list[Any]) -> list[Any]:
        out = list(values)
        for i, value in enumerate(out):
            convert, exact, param = self._slot(i)
            if convert is None or type(value) is exact:
                continue
            try:
                out[i] = convert(value)
            except Mismatch as err:
                raise ArgumentError(self._mismatch(i, param, err)) from None
        return out

    def _slot(self, i: int) -> tuple[Optional[Converter], Optional[type], Param]:
        """The converter, exact type and parameter of SQL argument ``i`` (varargs last)."""
        slots = self._slots
        return slots[min(i, len(slots) - 1)]

    def _mismatch(self, i: int, param: Param, err: Mismatch) -> str:
        """The one sentence Validate and Exec give for an argument that does not convert."""
        return f"Argument {i + 1} ({param.name}) of {self.spec.name}() {err}."

    def context(self, meta: Any) -> Context:
        """The context of the calling function instance, one per FuncMeta."""
        if isinstance(meta, Context):
            return meta
        ctx = self._contexts.get(meta)
        if ctx is None:
            fm = wire.decode_func_meta(meta)
            state = None if self.stores is None else State(
                self.stores, Scope.of_call(self.spec.name, fm.rule_id, fm.func_id))
            ctx = Context(self.spec.name, FUNCTION, rule_id=fm.rule_id, op_id=fm.op_id,
                          instance_id=fm.instance_id, func_id=fm.func_id, state=state)
            if len(self._contexts) >= self.MAX_CONTEXTS:
                self._contexts.clear()
            self._contexts[meta] = ctx
        return ctx

    def _logger(self, meta: Any) -> logging.LoggerAdapter[logging.Logger]:
        """The calling rule's logger, so that the line names the rule."""
        try:
            return self.context(meta).logger
        except ProtocolError:
            return self.log

    def close(self) -> None:
        self._loop.cancel()
        self._loop.close()
