"""The decorators: marks on a function returned unchanged, and the backoff a source takes."""


from kuiperlite import Backoff, function, sink, source
from kuiperlite.declare.kinds import FUNCTION, SINK, SOURCE
from kuiperlite.declare.marks import marks_of


def test_decorators_return_the_function_unchanged():
    def f(ctx):
        yield {}

    assert source(f) is f
    assert sink(name="x")(f) is f
    assert function("g")(f) is f
    assert [m.kind for m in marks_of(f)] == [SOURCE, SINK, FUNCTION]
    assert [m.name for m in marks_of(f)] == [None, "x", "g"]



def test_marks_of_anything_unmarked_is_empty():
    assert marks_of(len) == () and marks_of(42) == ()


def test_a_backoff_doubles_from_its_first_wait_up_to_its_most():
    backoff = Backoff(first=0.5, most=3)
    assert [backoff.delay(n) for n in (1, 2, 3, 4, 5, 1000)] == [0.5, 1, 2, 3, 3, 3]
