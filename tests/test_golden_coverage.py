"""Every line of the golden corpus has a test: a line added to a file and taken
by no test fails here."""

import importlib.util
from pathlib import Path

from golden_corpus import FILES, load

TESTS = Path(__file__).resolve().parent


def taken_cases() -> dict[str, set[str]]:
    """The corpus lines each test module takes as its ``case`` parameter, by file."""
    taken: dict[str, set[str]] = {file: set() for file in FILES}
    for path in sorted(TESTS.rglob("test_*.py")):
        if "golden_corpus.cases(" not in path.read_text():
            continue
        spec = importlib.util.spec_from_file_location(f"golden_taken_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for test in vars(module).values():
            for mark in getattr(test, "pytestmark", ()):
                if mark.name == "parametrize" and mark.args[0] == "case":
                    for param in mark.args[1]:
                        case = param.values[0]
                        taken[case["file"]].add(case["case"])
    return taken


def test_every_line_of_the_corpus_has_a_test() -> None:
    taken = taken_cases()
    missing = {file: sorted({case["case"] for case in load(file)} - taken[file])
               for file in FILES}
    missing = {file: names for file, names in missing.items() if names}
    assert not missing, f"corpus lines without a test: {missing}"
