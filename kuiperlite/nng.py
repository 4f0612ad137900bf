"""nng sockets through the binding pynng compiles, without pynng's Python layer.

pynng's package imports asyncio and ssl for its asynchronous API: 40 ms
and 8 MB a plugin never uses, more than the rest of its start-up together.
This module loads only pynng's compiled module (nng and its cffi binding)
and wraps the few calls a plugin makes: open, options, dial, listen,
send, receive, close, and a count of the peers connected.

nng calls into Python through two functions the binding declares, one when
an asynchronous operation completes and one when a peer connects or
leaves. This module attaches its own to them; what belongs to pynng's
sockets and operations it passes on to pynng, so a plugin may import pynng
too, at any time. pynng's modules take them back as they are imported, so
an import hook claims them again the moment each is (operations in flight
meanwhile, a sink's pending receive, must not lose their completion), and
so does every new socket and operation, should another finder have loaded
pynng.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from typing import Any, Callable, Optional


def _binding() -> Any:
    """pynng's compiled module, loaded without running pynng's ``__init__``."""
    loaded = sys.modules.get("pynng._nng")
    if loaded is not None:
        return loaded
    from importlib import machinery, util

    spec = machinery.PathFinder.find_spec("pynng")
    for directory in (spec.submodule_search_locations or []) if spec else []:
        for suffix in machinery.EXTENSION_SUFFIXES:
            path = os.path.join(directory, "_nng" + suffix)
            if os.path.exists(path):
                loader = machinery.ExtensionFileLoader("pynng._nng", path)
                module = util.module_from_spec(machinery.ModuleSpec("pynng._nng", loader,
                                                                    origin=path))
                loader.exec_module(module)
                # pynng, when imported later, finds and shares this one.
                sys.modules["pynng._nng"] = module
                return module
    raise ImportError("kuiperlite needs pynng's compiled nng binding; install pynng "
                      "(pip install 'pynng>=0.8.1')")


_nng = _binding()
ffi: Any = _nng.ffi
lib: Any = _nng.lib
VERSION = tuple(int(part) for part in ffi.string(lib.nng_version()).decode().split(".")[:2])


class NNGError(Exception):
    """An nng call failed; ``errno`` is nng's error number."""

    def __init__(self, errno: int) -> None:
        super().__init__(ffi.string(lib.nng_strerror(errno)).decode())
        self.errno = errno


class Timeout(NNGError):
    """The send or receive waited its whole timeout."""


class Closed(NNGError):
    """The socket is closed (or the operation was cancelled by its close)."""


class TryAgain(NNGError):
    """A send or receive that may not wait would have to."""


class AddressInUse(NNGError):
    """Another listener holds the address."""


class BadState(NNGError):
    """The protocol does not allow this now (a REP sending before it received)."""


_ERRORS = {lib.NNG_ETIMEDOUT: Timeout, lib.NNG_ECLOSED: Closed, lib.NNG_EAGAIN: TryAgain,
           lib.NNG_EADDRINUSE: AddressInUse, lib.NNG_ESTATE: BadState}


def check(err: int) -> None:
    """Raise the :class:`NNGError` for nng's return value ``err``, if it is one."""
    if err:
        raise _ERRORS.get(err, NNGError)(err)


def take(data: Any, size: Any) -> bytes:
    """The message a receive with ``NNG_FLAG_ALLOC`` put in ``data``, its buffer freed."""
    length, buffer = size[0], data[0]
    if not length:
        return b""
    message: bytes = ffi.unpack(buffer, length)
    lib.nng_free(buffer, length)
    return message


# Asynchronous operations waiting for nng's completion call, by key
# (see :func:`on_complete`).
_completions: dict[int, Callable[[], None]] = {}


def _complete(arg: Any) -> None:
    key = int(ffi.cast("size_t", arg))
    done = _completions.pop(key, None)
    if done is None:  # one of pynng's own operations
        done = sys.modules["pynng._aio"]._aio_map.pop(key)
    done()


def _pipe_event(pipe: Any, event: int, arg: Any) -> None:
    owner = ffi.from_handle(arg)
    if isinstance(owner, Socket):
        owner._pipe_event(event)
    else:  # a pynng socket
        sys.modules["pynng.nng"]._nng_pipe_cb(pipe, event, arg)


# The pynng modules there were when this module last attached its functions.
_claimed: tuple[Any, Any] = (False, False)


def claim_callbacks(*, anyway: bool = False) -> None:
    """Attach this module's functions to nng's calls into Python, if pynng took them.

    Args:
        anyway: attach them even when no pynng module came since the last time
            (one that was still being imported then has taken them since).
    """
    global _claimed
    pynng_modules = (sys.modules.get("pynng._aio"), sys.modules.get("pynng.nng"))
    if anyway or pynng_modules != _claimed:
        ffi.def_extern(name="_async_complete")(_complete)
        ffi.def_extern(name="_nng_pipe_cb")(_pipe_event)
        _claimed = pynng_modules


def on_complete(key: int, done: Callable[[], None]) -> None:
    """Have nng's completion of the operation made with ``key`` call ``done`` (once)."""
    if _claimed[0] is not sys.modules.get("pynng._aio"):
        claim_callbacks()
    _completions[key] = done


def forget(key: int) -> None:
    """Drop what :func:`on_complete` registered for ``key``, if it was never called."""
    _completions.pop(key, None)


class _Reclaim:
    """A meta path finder: pynng's modules that take nng's calls are loaded by
    :class:`_Reclaiming`, which claims the calls back right after."""

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> Any:
        if name not in _PYNNG_CALLERS:
            return None
        from importlib import machinery

        spec = machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Reclaiming(spec.loader)  # type: ignore[assignment]
        return spec


class _Reclaiming:
    """A module loader that claims nng's calls into Python after the module runs."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        try:
            self._loader.exec_module(module)
        finally:
            claim_callbacks(anyway=True)
            if _pynng_loaded() and _Reclaim in sys.meta_path:
                sys.meta_path.remove(_Reclaim)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, ...
        return getattr(self._loader, name)


# The pynng modules that attach their own functions to nng's calls.
_PYNNG_CALLERS = ("pynng._aio", "pynng.nng")


def _pynng_loaded() -> bool:
    """Whether both pynng modules that take nng's calls have been imported."""
    return all(name in sys.modules for name in _PYNNG_CALLERS)


claim_callbacks()
if not _pynng_loaded():
    sys.meta_path.insert(0, _Reclaim)
# As pynng does: at interpreter exit nng's threads stop before Python's do.
atexit.register(lib.nng_fini)

PUSH, PULL, REQ, REP = (lib.nng_push0_open, lib.nng_pull0_open, lib.nng_req0_open,
                        lib.nng_rep0_open)

# Socket options by their keyword, with the setter for their type.
_OPTIONS = {
    "recv_timeout": (b"recv-timeout", lib.nng_socket_set_ms),
    "send_timeout": (b"send-timeout", lib.nng_socket_set_ms),
    "resend_time": (b"req:resend-time", lib.nng_socket_set_ms),
    "reconnect_time_min": (b"reconnect-time-min", lib.nng_socket_set_ms),
    "reconnect_time_max": (b"reconnect-time-max", lib.nng_socket_set_ms),
    "send_buffer": (b"send-buffer", lib.nng_socket_set_int),
    "recv_buffer": (b"recv-buffer", lib.nng_socket_set_int),
    "recv_max_size": (b"recv-size-max", lib.nng_socket_set_size),
}


def threads() -> set[str]:
    """The ids of this process's threads now (empty where /proc is not)."""
    try:
        return set(os.listdir("/proc/self/task"))
    except OSError:
        return set()


def batch_task_threads(before: set[str], wait: float = 2.0) -> None:
    """Make nng's task threads in this process batch threads.

    A batch thread (Linux's ``SCHED_BATCH``) that is woken does not take the
    core from the thread that woke it; it runs when that thread waits, or on
    another core if one is idle. Sending a message, the Python thread wakes
    one of nng's task threads while it holds nng's locks: woken at once on
    the same core, the task thread only waits for those locks and hands the
    core back, three times per message. nng's other threads stay as they
    are: a close waits for the reaper, a timeout for the expiry thread, and
    as batch threads they would wait for whatever else runs on the core.

    nng starts its threads with the first socket, and each names itself
    once it runs, which on a busy machine may be a while later. So this
    takes the threads that are new since ``before`` (the ids from
    :func:`threads` before that socket opened), and waits up to ``wait``
    seconds for each to have a name of its own. On a system without the
    policy it does nothing.
    """
    policy = getattr(os, "SCHED_BATCH", None)
    if policy is None:
        return
    inherited = _name("self")  # what a thread is called before it names itself
    pending = threads() - before
    deadline = time.monotonic() + wait
    while pending:
        for tid in list(pending):
            name = _name(f"self/task/{tid}")
            if name == inherited and time.monotonic() < deadline:
                continue  # not named yet
            pending.discard(tid)
            if name == "nng:task":
                try:
                    os.sched_setscheduler(int(tid), policy, os.sched_param(0))
                except OSError:  # a thread that just ended, or a policy the system refuses
                    pass
        if pending:
            time.sleep(0.002)


def _name(where: str) -> str:
    """The name of a process or thread under /proc (empty when it is gone)."""
    try:
        with open(f"/proc/{where}/comm") as comm:
            return comm.read().strip()
    except OSError:
        return ""


class Endpoint:
    """A dialer or listener of a :class:`Socket`; closing it leaves the socket open."""

    def __init__(self, sock: Socket, handle: Any, closer: Any) -> None:
        self._sock, self._handle, self._closer = sock, handle, closer

    def close(self) -> None:
        if self in self._sock.dialers:
            self._sock.dialers.remove(self)
        self._closer(self._handle)


class Socket:
    """An nng socket of one protocol (:data:`PUSH`, :data:`PULL`, :data:`REQ`, :data:`REP`).

    Options are keywords in milliseconds, messages or bytes: ``recv_timeout``,
    ``send_timeout``, ``resend_time``, ``reconnect_time_min``,
    ``reconnect_time_max``, ``send_buffer``, ``recv_buffer``,
    ``recv_max_size``. ``pipes`` counts the peers connected now.
    """

    def __init__(self, protocol: Any, **options: int) -> None:
        claim_callbacks()
        opened = ffi.new("nng_socket *")
        check(protocol(opened))
        self.socket = opened[0]  # nng_socket, by value, as nng's functions take it
        self.closed = False
        self.pipes = 0
        self.connects = 0  # peers ever connected
        self.dialers: list[Endpoint] = []
        self._peers = threading.Condition()
        self._lost_at: Optional[float] = time.monotonic()
        self._self = ffi.new_handle(self)  # lives as long as the socket, for nng's calls
        for event in (lib.NNG_PIPE_EV_ADD_POST, lib.NNG_PIPE_EV_REM_POST):
            check(lib.nng_pipe_notify(self.socket, event, lib._nng_pipe_cb, self._self))
        for name, value in options.items():
            self.set(name, value)

    def set(self, name: str, value: int) -> None:
        """Set the option ``name`` (one of the keywords of :class:`Socket`)."""
        try:
            option, setter = _OPTIONS[name]
        except KeyError:
            raise ValueError(f"No socket option {name!r}; expected one of "
                             f"{', '.join(_OPTIONS)}.") from None
        check(setter(self.socket, option, value))

    def _pipe_event(self, event: int) -> None:
        with self._peers:
            if event == lib.NNG_PIPE_EV_ADD_POST:
                self.pipes += 1
                self.connects += 1
                self._lost_at = None
            elif self.pipes > 0:
                self.pipes -= 1
                if not self.pipes:
                    self._lost_at = time.monotonic()
            self._peers.notify_all()

    def wait_connected(self, timeout: float, since: int = -1) -> bool:
        """Wait until a peer is connected (one more than ``since`` connects, if given)."""
        with self._peers:
            if since >= 0:
                return self._peers.wait_for(lambda: self.connects > since, timeout)
            return self._peers.wait_for(lambda: self.pipes > 0, timeout)

    def disconnected_for(self) -> float:
        """Seconds since the socket lost its last peer (or opened); 0 while connected."""
        lost = self._lost_at
        return 0.0 if lost is None else time.monotonic() - lost

    def dial(self, address: str, *, block: bool = False) -> Endpoint:
        """Dial ``address``; unless ``block``, nng connects (and reconnects) in the background."""
        dialer = ffi.new("nng_dialer *")
        check(lib.nng_dial(self.socket, address.encode(), dialer,
                           0 if block else lib.NNG_FLAG_NONBLOCK))
        endpoint = Endpoint(self, dialer[0], lib.nng_dialer_close)
        self.dialers.append(endpoint)
        return endpoint

    def listen(self, address: str) -> Endpoint:
        """Listen on ``address``."""
        listener = ffi.new("nng_listener *")
        check(lib.nng_listen(self.socket, address.encode(), listener, 0))
        return Endpoint(self, listener[0], lib.nng_listener_close)

    @property
    def recv_fd(self) -> int:
        """A descriptor that polls readable while a message waits to be received."""
        fd = ffi.new("int *")
        check(lib.nng_socket_get_int(self.socket, b"recv-fd", fd))
        return int(fd[0])

    def send(self, data: bytes) -> None:
        """Send ``data``, waiting up to the send timeout for the peer to take it."""
        check(lib.nng_send(self.socket, data, len(data), 0))

    def recv(self) -> bytes:
        """Receive a message, waiting up to the receive timeout."""
        data, size = ffi.new("char **"), ffi.new("size_t *")
        check(lib.nng_recv(self.socket, data, size, lib.NNG_FLAG_ALLOC))
        return take(data, size)

    def close(self) -> None:
        """Close the socket; a thread blocked on it returns with :class:`Closed`."""
        if not self.closed:
            self.closed = True
            lib.nng_close(self.socket)

    def __del__(self) -> None:
        # A socket dropped open would keep calling into Python with a handle
        # that is gone once this object is.
        if hasattr(self, "closed"):
            self.close()

    def __enter__(self) -> Socket:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
