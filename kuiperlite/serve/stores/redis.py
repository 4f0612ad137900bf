"""The state store for plugins that outgrow one machine: Redis (``kuiperlite[redis]``).

Set ``KUIPERLITE_STATE_URL=redis://host:port/db``. Each scope is one Redis
hash, named ``kuiperlite:<plugin>:<scope as JSON>``; its fields are the keys
and their values JSON text, so ``incr`` is Redis's own atomic ``HINCRBY``.

Messages and logs show the URL without its credentials: see :func:`shown`.
"""

from __future__ import annotations

import re
from typing import Any, Optional
from urllib.parse import parse_qsl, urlsplit

import orjson

from ...declare.state import Scope, incremented
from ...errors import StateError

SCHEMES = ("redis", "rediss", "unix")
URL_FORMS = ("redis://[[user]:password@]host[:port][/db], rediss://... for TLS, or "
             "unix:///path/to/redis.sock[?db=N]")
_NUMBER = re.compile(r"[0-9]+")


def shown(url: str) -> str:
    """``url`` as messages show it: scheme, host, port and db, and the names of its
    query parameters with their values as ``***``; never a user or a password.

    Raises:
        StateError: the URL is malformed; the sentence names what is wrong in it
            without showing any of it, for a malformed URL may hide a password anywhere.
    """
    def malformed(problem: str) -> StateError:
        return StateError(f"The state store URL is malformed: {problem}; write {URL_FORMS}.")

    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in SCHEMES:
        raise malformed("it does not begin with redis://, rediss:// or unix://")
    if "#" in url:
        raise malformed("it holds a '#', which a password must write as %23")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise malformed("it cannot be parsed") from None
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(name == "db" and not _NUMBER.fullmatch(value) for name, value in query):
        raise malformed("its db parameter is not a number")
    if scheme == "unix":
        if not parts.path:
            raise malformed("it names no socket file")
        where = f"unix://{parts.path}"
    else:
        try:
            port = parts.port
        except ValueError:  # not a number, or past 65535
            port = 0
        if port == 0:
            raise malformed("its port is not a number from 1 to 65535")
        if not parts.hostname:
            raise malformed("it names no host")
        if not re.fullmatch(r"(/[0-9]*)?", parts.path):
            raise malformed("its path is not a db number such as /0")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        where = f"{scheme}://{host}{'' if port is None else f':{port}'}{parts.path}"
    if query:
        where += "?" + "&".join(f"{name}={value if name == 'db' else '***'}"
                                for name, value in query)
    return where


class RedisStore:
    """A plugin's state in a Redis server, shared by every machine that runs the plugin."""

    def __init__(self, url: str, plugin: str) -> None:
        self.where = shown(url)
        try:
            import redis
        except ImportError:
            raise StateError("KUIPERLITE_STATE_URL names a Redis server, but the redis "
                             "package is not installed: pip install 'kuiperlite[redis]'.") \
                from None
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError,)
        self._response_error = redis.ResponseError
        self.prefix = f"kuiperlite:{plugin}:"
        try:
            self._db = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10)
            self._db.ping()
        except TypeError as err:  # a query parameter the connection does not take
            name = re.findall(r"'([^']*)'", str(err))
            raise StateError(f"The state store {self.where} cannot be opened: redis takes no "
                             f"query parameter {name[-1] if name else ''!r}.") from None
        except ValueError as err:  # a query parameter's value
            raise StateError(f"The state store {self.where} cannot be opened: "
                             f"{_said(err)}.") from None
        except redis.RedisError as err:
            raise StateError(f"The state store {self.where} cannot be reached: {_said(err)}.") \
                from None

    def _name(self, scope: Scope) -> str:
        return self.prefix + orjson.dumps(list(scope)).decode()

    def _call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self._db, method)(*args)
        except self._errors as err:
            raise StateError(f"The state store {self.where} failed: {_said(err)}.") from None

    def get(self, scope: Scope, key: str) -> Optional[str]:
        value = self._call("hget", self._name(scope), key)
        return None if value is None else value.decode()

    def put(self, scope: Scope, key: str, value: str) -> None:
        self._call("hset", self._name(scope), key, value)

    def delete(self, scope: Scope, key: str) -> None:
        self._call("hdel", self._name(scope), key)

    def incr(self, scope: Scope, key: str, amount: int) -> int:
        try:
            return int(self._db.hincrby(self._name(scope), key, amount))
        except self._response_error:
            # Not an integer there, or past 64 bits: say which as SQLite does.
            incremented(scope, key, self.get(scope, key), amount)
            raise StateError(f"State {key!r} of {scope.described}: incr failed.") from None
        except self._errors as err:
            raise StateError(f"The state store {self.where} failed: {_said(err)}.") from None

    def _scopes(self, rule: Optional[str], symbol: Optional[str]) -> list[tuple[bytes, Scope]]:
        pattern = _glob_escape(self.prefix) + "*"
        found = []
        try:
            names = list(self._db.scan_iter(match=pattern))
        except self._errors as err:
            raise StateError(f"The state store {self.where} failed: {_said(err)}.") from None
        for name in names:
            try:
                scope = Scope(*orjson.loads(name[len(self.prefix.encode()):]))
            except (orjson.JSONDecodeError, TypeError):
                continue  # not a hash kuiperlite wrote
            if (rule is None or scope.rule == rule) and (symbol is None or scope.symbol == symbol):
                found.append((name, scope))
        return sorted(found, key=lambda item: item[1])

    def entries(self, rule: Optional[str] = None,
                symbol: Optional[str] = None) -> list[tuple[Scope, str, str]]:
        out = []
        for name, scope in self._scopes(rule, symbol):
            fields = self._call("hgetall", name)
            out += [(scope, k.decode(), v.decode()) for k, v in sorted(fields.items())]
        return out

    def clear(self, rule: Optional[str] = None, symbol: Optional[str] = None) -> int:
        gone = 0
        for name, _scope in self._scopes(rule, symbol):
            gone += int(self._call("hlen", name))
            self._call("delete", name)
        return gone

    def close(self) -> None:
        self._db.close()


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def _said(err: BaseException) -> str:
    """An error's text without its closing full stop, to end a sentence of ours."""
    return str(err).rstrip(".")
