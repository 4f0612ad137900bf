"""A supervisor in a fresh process of its own, for tests/serve/test_supervisor.py.

``python supervised.py CASE`` forks as a plugin's first process does: with
no thread running yet (the pytest process has nng's threads, and a fork
there may deadlock the child). Cases:

- ``message``: the worker ends with ``SystemExit('bad config')``;
- ``dies``: the worker exits with code 7 before it has loaded a plugin;
- ``page``: a forked child marks a function in the shared page, and this
  process prints whether it sees the mark.

The exit code is the supervisor's (``page``: 0).
"""

import os
import sys

from kuiperlite.serve import supervisor
from kuiperlite.serve.supervisor import InFlight, shared_page


def bad_config(*_args: object) -> int:
    raise SystemExit("bad config")


def dies(*_args: object) -> int:
    os._exit(7)


def main() -> int:
    case = sys.argv[1]
    if case == "message":
        return supervisor.supervise(bad_config)
    if case == "dies":
        return supervisor.supervise(dies)
    if case == "page":
        page = InFlight(functions=1, page=shared_page())
        pid = os.fork()
        if pid == 0:
            page.function_begin(0, b"in hand")
            os._exit(0)
        os.waitpid(pid, 0)
        print("marked" if page.function_pending(0) is not None else "unmarked")
        return 0
    raise SystemExit(f"unknown case {case!r}; expected message, dies or page")


if __name__ == "__main__":
    sys.exit(main())
