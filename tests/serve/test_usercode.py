"""How adapters call user code: the private event loop and the positional arguments."""

import asyncio
import threading

import pytest

from kuiperlite import Context
from kuiperlite.errors import Stopped
from kuiperlite.serve.usercode import Loop, arguments


def test_a_loop_runs_coroutines_to_their_end_on_one_event_loop():
    loop = Loop()

    async def which():
        return asyncio.get_running_loop()

    try:
        assert loop.run(which()) is loop.run(which())
    finally:
        loop.close()


def test_a_cancel_stops_the_running_coroutine_and_refuses_the_next_but_a_final_one():
    loop = Loop()
    started = threading.Event()

    async def forever():
        started.set()
        await asyncio.sleep(60)

    async def teardown():
        return "closed"

    threading.Thread(target=lambda: (started.wait(10), loop.cancel()), daemon=True).start()
    try:
        with pytest.raises(Stopped):
            loop.run(forever())
        with pytest.raises(Stopped):
            loop.run(teardown())
        assert loop.run(teardown(), final=True) == "closed"
    finally:
        loop.close()


def test_arguments_put_the_context_and_the_value_where_the_signature_wants_them():
    ctx = Context("s")
    assert arguments(None, ctx, None, "v") == []
    assert arguments(0, ctx, None, "v") == [ctx]
    assert arguments(1, ctx, 0, "v") == ["v", ctx]
    assert arguments(None, ctx, 0, "v") == ["v"]
