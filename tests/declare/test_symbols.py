import inspect
from collections.abc import Generator
from typing import Annotated, Any, Literal, Optional

import pytest

from kuiperlite import Backoff, Context, DefinitionError, Dynamic, function, sink, source
from kuiperlite.declare.params import ASYNC, ASYNC_GENERATOR, GENERATOR, PLAIN
from kuiperlite.declare.symbols import AnySpec, marks_of, read
from kuiperlite.errors import ConfigError


def spec(func) -> AnySpec:
    (mark,) = marks_of(func)
    return read(func, mark)


def test_bare_and_called_forms_name_the_symbol():
    @source
    def a(ctx):
        yield {}

    @source()
    def b(ctx):
        yield {}

    @sink("print")
    def c(data):
        pass

    @function(name="rev", aggregate=True)
    def d(x):
        return x

    assert [spec(f).name for f in (a, b, c, d)] == ["a", "b", "print", "rev"]
    assert spec(d).aggregate is True


def test_docstring_first_paragraph_is_the_description():
    @source
    def s(ctx):
        """Emit records
        forever.

        Details that stay out.
        """
        yield {}

    @sink(description="Given text.")
    def k(data):
        """Ignored."""

    assert spec(s).description == "Emit records forever."
    assert spec(k).description == "Given text."


def test_source_signature_is_read_once():
    @source
    async def s(ctx: Context, ds: str, *, interval: float = 0.5, mode: Literal["a", "b"] = "a",
                **rest):
        yield {}

    sym = spec(s)
    assert sym.style == ASYNC_GENERATOR
    assert (sym.context_index, sym.datasource_index, sym.datasource_name) == (0, 1, "ds")
    assert [p.name for p in sym.config] == ["interval", "mode"]
    assert sym.extra_config


def test_styles():
    @sink
    def plain(data):
        pass

    @sink
    async def coroutine(data):
        pass

    @sink
    def gen() -> Generator[None, bytes, None]:
        yield

    assert (spec(plain).style, spec(coroutine).style, spec(gen).style) == (PLAIN, ASYNC, GENERATOR)
    assert spec(gen).data.data == "bytes"


@pytest.mark.parametrize(("hint", "mode"), [(bytes, "bytes"), (str, "text"), (dict, "json"),
                                            (Any, "json")])
def test_sink_data_mode_follows_the_hint(hint, mode):
    def k(ctx, data):
        pass

    k.__annotations__["data"] = hint
    assert spec(sink(k)).data.data == mode


def test_context_is_found_by_hint_or_name():
    @function
    def f(a: int, c: Context, b: int):
        return a

    @function
    def g(ctx, a):
        return a

    assert spec(f).context_index == 1
    assert [p.name for p in spec(f).params] == ["a", "b"]
    assert spec(g).context_index == 0


def test_config_type_is_inferred_from_a_default():
    @source
    def s(ctx, *, count=3, name=None):
        yield {}

    count, name = spec(s).config
    assert count.type.hint is int
    assert name.type.hint is Any


def test_bind_config_converts_and_keeps_extra_keys():
    @source
    def s(ctx, *, interval: float, tags: list[str] = [], **extra):  # noqa: B006
        yield {}

    sym = spec(s)
    kwargs = sym.bind_config({"interval": "1.5", "tags": ["a"], "requireAck": True})
    assert kwargs == {"interval": 1.5, "tags": ["a"], "requireAck": True}


def test_bind_config_refuses_a_missing_or_mistyped_key_and_ignores_ekuipers():
    @sink
    def k(data, *, port: int, host: str = "localhost"):
        pass

    sym = spec(k)
    with pytest.raises(ConfigError, match="'port'"):
        sym.bind_config({})
    with pytest.raises(ConfigError, match="'port'"):
        sym.bind_config({"port": "eighty"})
    assert sym.bind_config({"port": 80, "format": "json"}) == {"port": 80}


def test_function_argument_range():
    @function
    def f(a, b=1, *rest):
        return a

    @function
    def g(a, b=2):
        return a

    assert spec(f).arg_range == (1, None)
    assert spec(g).arg_range == (1, 2)


def bad_source_extra_positional(ctx, ds, other):
    yield {}


def bad_source_default(ctx, interval=1.0):
    yield {}


def bad_sink_no_data(ctx, *, path: str):
    pass


def bad_gen_sink_with_data(ctx, data):
    yield


def bad_func_kwonly(a, *, b):
    return a


def bad_func_generator(a):
    yield a


def bad_hint(ctx, *, value: set):
    yield {}


def bad_two_contexts(a: Context, b: Context):
    yield {}


def bad_dynamic_source(ctx, *, topic: Dynamic[str]):
    yield {}


def bad_dynamic_function(name: Dynamic[str]):
    return name


def bad_dynamic_generator_sink(ctx, *, path: Dynamic[str]):
    while True:
        yield


async def bad_dynamic_async_generator_sink(ctx, *, path: Dynamic[str]):
    while True:
        yield


def bad_dynamic_list(data, *, tags: Dynamic[list[str]]):
    pass


def bad_dynamic_inside(data, *, tags: list[Dynamic[str]]):
    pass


def bad_dynamic_default(data, *, topic: Dynamic[str] = "t/{{.id | upper}}"):
    pass


def definition_error(decorator: Any, func: Any) -> DefinitionError:
    """The DefinitionError collecting ``decorator(func)`` raises, which names the function
    and its file:line."""
    marked = decorator(func)
    with pytest.raises(DefinitionError) as info:
        spec(marked)
    delattr(func, "__kuiperlite__")
    assert info.value.where == (f"{decorator.__name__} {func.__name__!r} "
                                f"(test_symbols.py:{inspect.getsourcelines(func)[1]})")
    return info.value


@pytest.mark.parametrize(("decorator", "func", "noun"), [
    (source, bad_dynamic_source, "'topic'"), (function, bad_dynamic_function, "'name'"),
    (sink, bad_dynamic_generator_sink, "'path'"),
    (sink, bad_dynamic_async_generator_sink, "'path'"),
    (sink, bad_dynamic_list, "'tags'"), (sink, bad_dynamic_inside, "'tags'"),
    (sink, bad_dynamic_default, "'topic'"), (source, bad_source_extra_positional, "'other'"),
    (source, bad_source_default, "'interval'"), (sink, bad_sink_no_data, "data"),
    (sink, bad_gen_sink_with_data, "'data'"), (function, bad_func_kwonly, "'b'"),
    (function, bad_func_generator, "generator"), (source, bad_hint, "'value'"),
    (source, bad_two_contexts, "'b'"),
])
def test_definition_errors_name_function_line_and_parameter(decorator, func, noun):
    assert noun in definition_error(decorator, func).problem


def test_a_sources_retry_is_the_default_backoff_its_own_or_none():
    def f(ctx):
        yield {}

    assert spec(source(f)).retry == Backoff(first=1.0, most=30.0)
    delattr(f, "__kuiperlite__")
    assert spec(source(retry=Backoff(first=0.5, most=10))(f)).retry == (0.5, 10)
    delattr(f, "__kuiperlite__")
    assert spec(source(retry=False)(f)).retry is None


@pytest.mark.parametrize(("retry", "noun"), [
    ("yes", "retry"), (None, "retry"), (3, "retry"), (Backoff(first=0), "first"),
    (Backoff(first=True), "first"), (Backoff(most=float("inf")), "most"),
    (Backoff(first="1"), "first"), (Backoff(first=5, most=2), "most"),
])
def test_a_bad_retry_is_refused_at_collection_naming_the_function(retry, noun):
    @source(retry=retry)
    def feed(ctx):
        yield {}

    with pytest.raises(DefinitionError) as info:
        spec(feed)
    assert info.value.where.startswith("source 'feed' (")
    assert info.value.where.endswith(f"test_symbols.py:{inspect.getsourcelines(feed)[1]})")
    assert noun in info.value.problem


def test_dynamic_config_of_a_sink_is_read_with_its_hint():
    @sink
    def k(data, *, topic: Dynamic[str], qos: Optional[Dynamic[int]] = None,
          mode: Dynamic[Literal["a", "b"]] = "a", plain: str = ""):
        pass

    config = {p.name: p.type for p in spec(k).config}
    assert [config[n].dynamic for n in config] == [True, True, True, False]
    assert (config["topic"].phrase, config["qos"].phrase) == ("a string", "an integer or null")
    assert config["mode"].choices == ["a", "b"]


def test_annotated_metadata_other_than_dynamic_changes_nothing():
    @sink
    def k(ctx: Annotated[Context, "the rule's"], *, port: Annotated[int, "tcp"] = 1
          ) -> Annotated[Generator[None, bytes, None], "raw"]:
        yield

    symbol = spec(k)
    assert symbol.context_index == 0 and symbol.data.data == "bytes"
    assert symbol.bind_config({"port": "80"}) == {"port": 80}


def test_bad_names_are_rejected():
    def f(ctx):
        yield {}

    with pytest.raises(DefinitionError, match="'my-source'"):
        spec(source(name="my-source")(f))
    def g(x):
        return x

    with pytest.raises(DefinitionError, match="'rev"):
        spec(function(name="rev\n")(g))  # it would become the file functions/rev\n.json


def test_the_context_is_found_by_annotation_name_or_position():
    @sink
    def typed_data(ctx: dict):  # the annotation wins over the name: this is the data
        pass

    @source
    def positional(c, building: str):  # the first of two is the Context
        yield {}

    @sink
    def generator(c):  # a generator sink's only positional parameter is its Context
        while True:
            yield

    assert (spec(typed_data).context_index, spec(typed_data).data_index) == (None, 0)
    assert (spec(positional).context_index, spec(positional).datasource_index) == (0, 1)
    assert spec(generator).context_index == 0


def bad_config_default(data, *, port: int = "8080"):
    pass


def bad_argument_default(a, b: str = 5):
    return a


def bad_list_default(ctx, *, ports: list[int] = [1, "2"]):  # noqa: B006
    yield {}


@pytest.mark.parametrize(("decorator", "func", "noun"), [
    (sink, bad_config_default, "'port'"), (function, bad_argument_default, "'b'"),
    (source, bad_list_default, "'ports'"),
])
def test_a_default_that_does_not_match_its_hint_is_refused(decorator, func, noun):
    assert noun in definition_error(decorator, func).problem


def test_defaults_that_match_their_hint_are_kept():
    @sink
    def k(data, *, port: int = 8080, ratio: float = 1, whole: int = 3.0,
          host: Optional[str] = None, topic: Dynamic[int] = "{{.n}}",
          mode: Literal["a", "b"] = "a", tags: list[str] = ["x"]):  # noqa: B006
        pass

    defaults = {p.name: p.default for p in spec(k).config}
    assert defaults == {"port": 8080, "ratio": 1, "whole": 3, "host": None, "topic": "{{.n}}",
                        "mode": "a", "tags": ["x"]}
    assert (type(defaults["ratio"]), type(defaults["whole"])) == (float, int)  # as converted
