"""Functions whose arguments have hints, for the checks Validate makes when a
rule is created.

Used by tests/test_validate.py, copied under a name of the test's own.
"""

from typing import Optional

import kuiperlite
from kuiperlite import function


@function
def typed(s: str, n: int, x: float, flag: bool) -> list:
    return [s, n, x, flag]


@function
def maybe(flag: Optional[bool]) -> Optional[bool]:
    return flag


@function
def tagged(tag: str, *codes: int) -> list:
    return [tag, *codes]


@function(aggregate=True)
def total(values: list[float]) -> float:
    return sum(values)


if __name__ == "__main__":
    kuiperlite.run()
