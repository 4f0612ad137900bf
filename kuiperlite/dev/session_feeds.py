"""What passes between ``serve`` and a running symbol: a source's records read,
a sink fed rule outputs, a function called; each becomes an event and a line.

A feed reports through ``record(running, kind, data, line)``, which the
session turns into an event for ``/symbol/output`` and a line on the terminal.
"""

from __future__ import annotations

from typing import Any, Callable

import orjson

from ..errors import KuiperliteError
from ..protocol import wire
from ..protocol.wire import FuncMeta
from .handles import FunctionHandle
from .handles_sink import SinkHandle
from .handles_source import SourceHandle, SourceStatus
from .session_requests import BadRequest, PluginFailed, Running
from .sinkrule import Message

Record = Callable[[Running, str, Any, str], None]


def read_source(running: Running, record: Record, say: Callable[[str], None]) -> None:
    """Record what a running source emits and reports, until it is stopped."""
    handle: SourceHandle = running.handle
    failed = False
    while not running.stopping.is_set():
        try:
            message, meta = handle.recv(timeout=0.5)
        except KuiperliteError:
            message = None
        # What the source reported comes before its next row, or with none.
        while handle.errors:
            error = handle.errors.pop(0)
            failure = wire.read_source_failure(error)
            # A failure is shown as the status it leaves: retrying or failed.
            word = "error" if failure is None else SourceStatus.after(failure).state
            failed = failed or failure is not None
            record(running, "error", error, f"{word}: {error}")
        while handle.mistakes:
            text = handle.mistakes.pop(0)
            record(running, "error", text,
                   f'sent {{"error": {_json(text)}}}, which eKuiper takes for an empty '
                   "row: the text is lost there")
        if message is not None:
            if failed:
                failed = False
                say(f"{running.tag} running again")
            data = {"message": message, "meta": meta} if meta else message
            record(running, "record", data, f"record {_json(data)}")


def send(running: Running, output: Any, record: Record) -> dict[str, Any]:
    """Feed one rule output to a running sink as eKuiper does (its sink
    pipeline, :meth:`SinkHandle.emit <kuiperlite.dev.handles_sink.SinkHandle.emit>`);
    what became of it.

    Returns:
        ``ack``: with requireAck, ``"ok"`` or the first error ack of the
        messages sent (None without requireAck, or when none was sent);
        ``messages``: each message eKuiper makes of the output;
        ``pending``: rows waiting for the batch to fill.

    Raises:
        BadRequest: the output is not a rule output eKuiper takes.
        PluginFailed: the plugin failed or died.
    """
    handle: SinkHandle = running.handle
    try:
        with running.lock:
            messages = handle.emit([output])
    except (ValueError, KuiperliteError) as err:
        record(running, "error", str(err), f"could not send: {err}")
        if isinstance(err, ValueError):
            raise BadRequest(str(err)) from None
        raise PluginFailed(str(err)) from None
    acks = [m.ack for m in messages if m.sent]
    ack = None if not handle.require_ack or not acks else \
        next((a for a in acks if a is not None), "ok")
    shown = [_message_json(m, handle.require_ack) for m in messages]
    pending = handle.rule.pending
    result = {"ack": ack, "messages": shown, "pending": pending}
    record(running, "ack", {"payload": output, **result},
           "; ".join(_message_line(m, handle.require_ack) for m in messages)
           or f"took {_json(output)}: nothing to send"
           + (f" ({pending} row(s) wait for the batch)" if pending else ""))
    return result


def call(running: Running, handle: FunctionHandle, args: list[Any], record: Record) -> Any:
    """Call a function once for ``running``'s rule; its result.

    Raises:
        PluginFailed: the function raised, or the plugin failed.
    """
    shown = f"{running.symbol}({', '.join(_json(a) for a in args)})"
    try:
        result = handle.call(*args, meta=FuncMeta(*running.ids, 0))
    except KuiperliteError as err:
        record(running, "error", str(err), f"{shown} failed: {err}")
        raise PluginFailed(str(err)) from None
    record(running, "result", {"args": args, "result": result},
           f"{shown} -> {_json(result)}")
    return result


def _message_json(message: Message, require_ack: bool) -> dict[str, Any]:
    """A message eKuiper made of a rule output, as serve reports it."""
    if message.dropped:
        return {"dropped": message.error, "op": message.op}
    assert message.data is not None
    ack = ("ok" if message.ack is None else message.ack) if require_ack and message.sent \
        else None
    return {"data": message.data.decode("utf-8", "replace"), "sent": message.sent, "ack": ack}


def _message_line(message: Message, require_ack: bool) -> str:
    if message.dropped:
        return f"eKuiper drops a message: {message.logged}"
    assert message.data is not None
    data = message.data.decode("utf-8", "replace")
    if not message.sent:
        return f"did not send {data}: the sink stopped"
    if not require_ack:
        return f"sent {data} (no ack: requireAck is off)"
    return f"sent {data} -> ack {'ok' if message.ack is None else message.ack}"


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return repr(value)
