"""The benchmark symbols, written with the official ekuiper SDK's classes."""

import os
import time
from pathlib import Path
from typing import Any

from ekuiper import Context, Function, PluginConfig, Sink, Source, plugin

from records import make


class Emit(Source):
    def __init__(self):
        self.running = True

    def configure(self, datasource: str, conf: dict):
        self.count = int(conf.get("count", 1000))
        self.record = make(str(conf.get("size", "100")))

    def open(self, ctx: Context):
        for _ in range(self.count):
            ctx.emit(self.record, None)
        while self.running:  # returning would close the socket under queued records
            time.sleep(0.05)

    def close(self, ctx: Context):
        self.running = False


class Ack(Sink):
    def configure(self, conf: dict):
        self.count = int(conf.get("count", 0))
        self.require_ack = conf.get("requireAck") is True
        self.seen = 0

    def open(self, ctx: Context):
        pass

    def collect(self, ctx: Context, data: Any):
        if self.require_ack:
            ctx.ack_ok()
        self.seen += 1
        if self.seen == self.count:
            print("DONE", ctx.get_rule_id(), flush=True)

    def close(self, ctx: Context):
        pass


class Revert(Function):
    def validate(self, args):
        return ""

    def exec(self, args, ctx: Context):
        return args[0][::-1]

    def is_aggregate(self):
        return False


if __name__ == "__main__":
    plugin.start(PluginConfig(Path(__file__).stem, {"emit": lambda: Emit()},
                              {"ack": lambda: Ack()},
                              {os.environ.get("BENCH_FUNCTION", "sdkrevert"): lambda: Revert()}))
