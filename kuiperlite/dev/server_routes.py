"""serve's routes, and the one table mapping domain errors to HTTP statuses.

The session and the plugin manager raise domain errors; only the HTTP layer
(:mod:`kuiperlite.dev.server_handler`) turns them into statuses, through
:func:`status_of`.
"""

from __future__ import annotations

import re

from ..errors import KuiperliteError
from .session_requests import BadRequest, Conflict, NotFound, PluginFailed, ServeError

# eKuiper's error codes (pkg/errorx): NOT_FOUND, and Undefined_Err for the rest.
EKUIPER_NOT_FOUND, EKUIPER_ERROR = 1002, 1000


class Forbidden(ServeError):
    """A request for another host name, or from a web page of another site."""


class Unauthorized(ServeError):
    """A request without the token serve was started with."""


class WrongMethod(ServeError):
    """The endpoint exists, but takes another method."""


class BodyTimeout(ServeError):
    """The body did not arrive within the request timeout."""


class TooLarge(ServeError):
    """The body is over the size limit."""


class WrongMediaType(ServeError):
    """A body sent as a type a browser sends across sites without asking."""


# The one place where what went wrong becomes an HTTP status. A class not
# here (by itself or a base) is a bug in serve: 500.
STATUS: dict[type[Exception], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    WrongMethod: 405,
    BodyTimeout: 408,
    Conflict: 409,
    TooLarge: 413,
    WrongMediaType: 415,
    PluginFailed: 502,
    KuiperliteError: 502,  # HostError, or an answer the host cannot decode
}


def status_of(error: Exception) -> int:
    """The HTTP status that answers ``error``: its class's, or its nearest base's in
    :data:`STATUS`; 500 when it has none."""
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


# eKuiper's plugin management paths, served with no plugin file; {name} is one segment.
MANAGE_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/config/uploads"): "uploaded",
    ("POST", "/config/uploads"): "upload",
    ("GET", "/plugins/portables"): "listing",
    ("POST", "/plugins/portables"): "register",
    ("GET", "/plugins/portables/{name}"): "describe",
    ("PUT", "/plugins/portables/{name}"): "update",
    ("DELETE", "/plugins/portables/{name}"): "delete",
    ("GET", "/plugins/portables/{name}/status"): "status",
    ("GET", "/metadata/functions"): "functions_meta",
}
MANAGE_PREFIXES = ("/config/uploads", "/plugins/portables", "/metadata/functions")
PLUGIN_PATH = re.compile(r"/plugins/portables/([^/]+)(/status)?")

ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/symbol/start"): "start",
    ("POST", "/symbol/stop"): "stop",
    ("POST", "/symbol/send"): "send",
    ("POST", "/function/call"): "call",
    ("GET", "/symbols"): "symbols",
    ("GET", "/symbol/output"): "output",
}
