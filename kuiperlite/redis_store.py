"""The state store for plugins that outgrow one machine: Redis (``kuiperlite[redis]``).

Set ``KUIPERLITE_STATE_URL=redis://host:port/db``. Each scope is one Redis
hash, named ``kuiperlite:<plugin>:<scope as JSON>``; its fields are the keys
and their values JSON text, so ``incr`` is Redis's own atomic ``HINCRBY``.
"""

from __future__ import annotations

from typing import Any, Optional
from urllib.parse import urlsplit, urlunsplit

import orjson

from .errors import StateError
from .state import Scope, incremented


class RedisStore:
    """A plugin's state in a Redis server, shared by every machine that runs the plugin."""

    def __init__(self, url: str, plugin: str) -> None:
        parts = urlsplit(url)
        # Messages and logs never show a password from the URL.
        shown = parts._replace(netloc=parts.netloc.rpartition("@")[2])
        self.where = urlunsplit(shown)
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
        except (ValueError, redis.RedisError) as err:
            raise StateError(f"The state store {self.where} cannot be reached: {err}.") \
                from None

    def _name(self, scope: Scope) -> str:
        return self.prefix + orjson.dumps(list(scope)).decode()

    def _call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self._db, method)(*args)
        except self._errors as err:
            raise StateError(f"The state store {self.where} failed: {err}.") from None

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
            raise StateError(f"State {key!r} of {scope.what}: incr failed.") from None
        except self._errors as err:
            raise StateError(f"The state store {self.where} failed: {err}.") from None

    def _scopes(self, rule: Optional[str], symbol: Optional[str]) -> list[tuple[bytes, Scope]]:
        pattern = _glob_escape(self.prefix) + "*"
        found = []
        try:
            names = list(self._db.scan_iter(match=pattern))
        except self._errors as err:
            raise StateError(f"The state store {self.where} failed: {err}.") from None
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
