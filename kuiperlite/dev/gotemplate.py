"""Go's text/template as eKuiper's sinks use it: the part the embedded host plays.

eKuiper renders a sink's ``dataTemplate``, and every other property holding
``{{ }}``, with Go's ``text/template`` and the function map eKuiper registers
(sprig's functions, ``json``, ``base64`` and ``prop``). :func:`parse` reads a
template and :meth:`Template.execute` runs it against a rule's output as Go
does, with Go's error texts:

- field paths (``.a.b``): a missing key prints ``<no value>``, and so does
  a path below one; a path below null or below a value that is not an object
  is an error;
- pipelines (``.s | upper``), function calls, parenthesized pipelines and
  fields of their results (``(index . 0).a``), ``if``/``else if``/``else``,
  comments and trim markers (``{{- ... -}}``);
- the functions ``index``, ``len``, ``printf`` (verbs ``%v``, ``%s``, ``%d``),
  ``json`` and ``toJson``, ``base64``, ``prop``, ``toString``, ``upper``,
  ``lower`` and ``default``;
- values printed as Go's fmt prints them (``1e+06``, ``map[a:1]``,
  ``[1 a <nil>]``).

Anything else Go's templates offer (``range``, ``with``, variables,
``define``/``template``/``block``, other functions) is refused when the
template is parsed, with
:class:`~kuiperlite.dev.gotemplate_values.Unsupported`: the host says it
cannot play it rather than play it wrongly. A name that is no function at all gets Go's
own parse error, as eKuiper reports it.

Values are JSON-shaped Python values as Go's ``encoding/json`` decodes them:
dicts, lists, strings, floats (every number of a stream without a schema is
a float64), booleans and None.
"""

from __future__ import annotations

from typing import Any, Optional

from ..declare.dynamic import NO_VALUE
from .gotemplate_lex import go_quote
from .gotemplate_parse import (
    Action,
    Chain,
    Command,
    Dot,
    Field,
    Identifier,
    If,
    Literal,
    Nil,
    Node,
    Pipe,
    TemplateParser,
    Text,
)
from .gotemplate_values import (
    FUNCTIONS,
    IFACE,
    INVALID,
    KNOWN_FUNCTIONS,
    MAP,
    MISSING_FINAL,
    ExecError,
    FuncError,
    V,
    concrete_value,
    sprint,
)


def parse(text: str, name: str = "sink", functions: frozenset[str] = KNOWN_FUNCTIONS
          ) -> Template:
    """Parse a template as eKuiper's ``transform.GenTp`` does.

    Args:
        text: the template.
        name: its name, shown in errors (eKuiper names every template ``sink``).
        functions: the names Go knows; another is Go's "not defined" error.

    Raises:
        ParseError: Go refuses the template; ``str(err)`` is its text
            (``template: sink:1: unexpected EOF``).
        Unsupported: Go accepts it, and the host cannot execute it.
    """
    parser = TemplateParser(text, name, functions)
    return Template(text, name, parser.parse())


# ------------------------------------------------------------------ execution

class Template:
    """A parsed template.

    Attributes:
        text: the template as written.
        name: its name in errors.
        root: its nodes.
    """

    def __init__(self, text: str, name: str, root: list[Node]) -> None:
        self.text = text
        self.name = name
        self.root = root

    def __repr__(self) -> str:
        return f"<Template {self.text!r}>"

    def execute(self, data: Any, data_type: str = MAP) -> str:
        """Run the template against ``data``, as Go's ``Execute`` does.

        Args:
            data: a rule's output: a row (a dict), or the list of rows.
            data_type: its Go type: :data:`MAP` for a row, :data:`ROWS` for a list.

        Raises:
            ExecError: Go's execution error, with what was written before it.
            Unsupported: a printf verb the host does not play.
        """
        run = _Run(self)
        try:
            for node in self.root:
                run.walk(V(data, data_type), node)
        except _Failed as failed:
            raise ExecError(failed.text, "".join(run.out)) from None
        return "".join(run.out)


class _Failed(Exception):
    def __init__(self, text: str) -> None:
        self.text = text


class _Run:
    """One execution: what it wrote and the node it is at (for errors)."""

    def __init__(self, template: Template) -> None:
        self.template = template
        self.out: list[str] = []
        self.node: Node = Text(0, "")

    def at(self, node: Node) -> None:
        self.node = node

    def fail(self, message: str) -> _Failed:
        text = self.template.text
        pos = self.node.pos
        before = text[:pos]
        line_start = before.rfind("\n") + 1
        column = len(before[line_start:].encode("utf-8", "surrogatepass"))
        line = 1 + before.count("\n")
        name = self.template.name
        return _Failed(f"template: {name}:{line}:{column}: executing {go_quote(name)} "
                       f"at <{self.node}>: {message}")

    # walk
    def walk(self, dot: V, node: Node) -> None:
        self.at(node)
        if isinstance(node, Text):
            self.out.append(node.text)
        elif isinstance(node, Action):
            value = self.pipeline(dot, node.pipe)
            self.at(node)
            self.out.append(NO_VALUE if not value.typ else _print(value))
        elif isinstance(node, If):
            value = concrete_value(self.pipeline(dot, node.pipe))
            for child in node.body if _truth(value) else node.orelse or []:
                self.walk(dot, child)

    def pipeline(self, dot: V, pipe: Pipe) -> V:
        self.at(pipe)
        value = MISSING_FINAL
        for cmd in pipe.cmds:
            value = concrete_value(self.command(dot, cmd, value))
        return value

    def command(self, dot: V, cmd: Command, final: V) -> V:
        first = cmd.args[0]
        if isinstance(first, Field):
            self.at(first)
            return self.field_chain(dot, dot, first, first.idents, cmd.args, final)
        if isinstance(first, Chain):
            return self.chain(dot, first, cmd.args, final)
        if isinstance(first, Identifier):
            return self.function(dot, first, cmd, cmd.args, final)
        if isinstance(first, Pipe):
            self.not_a_function(cmd.args, final)
            return self.pipeline(dot, first)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if isinstance(first, Literal):
            return first.value
        if isinstance(first, Dot):
            return dot
        raise self.fail("nil is not a command")

    def not_a_function(self, args: list[Node], final: V) -> None:
        if len(args) > 1 or final is not MISSING_FINAL:
            raise self.fail(f"can't give argument to non-function {args[0]}")

    def chain(self, dot: V, chain: Chain, args: Optional[list[Node]], final: V) -> V:
        self.at(chain)
        if isinstance(chain.node, Nil):
            raise self.fail(f"indirection through explicit nil in {chain}")
        receiver = self.arg(dot, "value", chain.node)
        return self.field_chain(dot, receiver, chain, chain.fields, args, final)

    def field_chain(self, dot: V, receiver: V, node: Node, idents: list[str],
                    args: Optional[list[Node]], final: V) -> V:
        for name in idents[:-1]:
            receiver = self.field(name, None, MISSING_FINAL, receiver)
        return self.field(idents[-1], args, final, receiver)

    def field(self, name: str, args: Optional[list[Node]], final: V, receiver: V) -> V:
        if not receiver.typ:
            return INVALID
        if receiver.typ == IFACE and receiver.value is None:
            raise self.fail(f"nil pointer evaluating {IFACE}.{name}")
        has_args = (args is not None and len(args) > 1) or final is not MISSING_FINAL
        if isinstance(receiver.value, dict):
            if has_args:
                raise self.fail(f"{name} is not a method but has arguments")
            if name in receiver.value:
                return V(receiver.value[name], IFACE)
            return INVALID
        raise self.fail(f"can't evaluate field {name} in type {receiver.typ}")

    def function(self, dot: V, ident: Identifier, node: Node, args: Optional[list[Node]],
                 final: V) -> V:
        self.at(ident)
        func = FUNCTIONS[ident.name]
        given = list(args[1:]) if args is not None else []
        count = len(given) + (final is not MISSING_FINAL)
        fixed = len(func.params)
        if func.variadic is not None:
            if count < fixed:
                raise self.fail(f"wrong number of args for {ident.name}: want at least "
                                f"{fixed} got {len(given)}")
        elif count != fixed:
            raise self.fail(f"wrong number of args for {ident.name}: want {fixed} got {count}")
        argv = [self.arg(dot, func.params[i] if i < fixed else str(func.variadic), arg)
                for i, arg in enumerate(given)]
        if final is not MISSING_FINAL:
            kind = func.params[count - 1] if count - 1 < fixed else str(func.variadic)
            argv.append(self.validate(final, kind))
        try:
            result = func.call(*argv)
        except FuncError as err:
            self.at(node)
            raise self.fail(f"error calling {ident.name}: {err}") from None
        return result if not func.result else V(result, func.result)

    def arg(self, dot: V, kind: str, node: Node) -> V:
        self.at(node)
        if isinstance(node, Dot):
            return self.validate(dot, kind)
        if isinstance(node, Nil):
            if kind == "string":
                raise self.fail("cannot assign nil to string")
            return V(None, IFACE) if kind == "any" else INVALID
        if isinstance(node, Field):
            self.at(node)
            return self.validate(self.field_chain(dot, dot, node, node.idents, [node],
                                                  MISSING_FINAL), kind)
        if isinstance(node, Pipe):
            return self.validate(self.pipeline(dot, node), kind)
        if isinstance(node, Identifier):
            return self.validate(self.function(dot, node, node, None, MISSING_FINAL), kind)
        if isinstance(node, Chain):
            return self.validate(self.chain(dot, node, None, MISSING_FINAL), kind)
        assert isinstance(node, Literal)
        if kind == "string" and node.value.typ != "string":
            raise self.fail(f"expected string; found {node}")
        return node.value

    def validate(self, value: V, kind: str) -> V:
        """The argument a function of parameter ``kind`` receives (Go's ``validateType``)."""
        if kind == "value":
            return value
        if kind == "any":
            return concrete_value(value)
        if not value.typ:
            raise self.fail("invalid value; expected string")
        found = concrete_value(value) if value.value is not None else value
        if found.typ != "string":
            raise self.fail(f"wrong type for value; expected string; got {found.typ}")
        return found


def _truth(value: V) -> bool:
    """Go's ``isTrue`` for the values a rule's output holds."""
    if not value.typ:
        return False
    return bool(value.value)


def _print(value: V) -> str:
    return value.value if isinstance(value.value, str) else sprint(value.value)
