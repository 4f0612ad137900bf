from kuiperlite.declare.docstrings import Docstring, parse


def test_google_style():
    doc = parse("""Emit readings
    from the sensors.

    More about it.

    Args:
        interval (float): seconds between two
            readings, at least 0.1.
        sensors (list[str], optional): which sensors.
        *args: extra values.
        **kwargs: more config.

    Returns:
        list[dict]: the readings, in order.

    Raises:
        ValueError: never documented as a parameter.
    """)
    assert doc == Docstring(
        summary="Emit readings from the sensors.",
        params={"interval": "seconds between two readings, at least 0.1.",
                "sensors": "which sensors.", "args": "extra values.", "kwargs": "more config."},
        returns="the readings, in order.",
    )


def test_google_returns_without_a_type_and_yields():
    assert parse("Do it.\n\nReturns:\n    The reverted string: really.\n").returns == (
        "The reverted string: really.")
    assert parse("Gen.\n\nYields:\n    int: numbers\n").returns == "numbers"


def test_numpy_style():
    doc = parse("""Convert a reading.

    Parameters
    ----------
    value : float
        The reading,
        as measured.
    unit, scale : str
        Shared text.
    flag
        No type.

    Returns
    -------
    float
        The value in Celsius.

    Examples
    --------
    >>> convert(1)
    """)
    assert doc.summary == "Convert a reading."
    assert doc.params == {"value": "The reading, as measured.", "unit": "Shared text.",
                          "scale": "Shared text.", "flag": "No type."}
    assert doc.returns == "The value in Celsius."


def test_numpy_return_with_only_a_type():
    assert parse("X.\n\nReturns\n-------\nint\n").returns == "int"


def test_rest_style():
    doc = parse("""Send a message.

    :param str topic: where it goes,
        with wildcards.
    :param qos: delivery level.
    :type qos: int
    :keyword retain: keep it.
    :returns: nothing useful.
    :rtype: None
    """)
    assert doc.summary == "Send a message."
    assert doc.params == {"topic": "where it goes, with wildcards.", "qos": "delivery level.",
                          "retain": "keep it."}
    assert doc.returns == "nothing useful."


def test_a_docstring_that_starts_with_a_section_has_no_summary():
    assert parse("Args:\n    x: the value.\n") == Docstring(params={"x": "the value."})
    assert parse(":param x: the value.") == Docstring(params={"x": "the value."})


def test_non_ascii_survives():
    doc = parse("温度传感器。\n\nArgs:\n    单位: 摄氏度或华氏度。\n")
    assert doc.summary == "温度传感器。"
    assert doc.params == {"单位": "摄氏度或华氏度。"}


def test_empty_and_odd_input():
    assert parse(None) == Docstring()
    assert parse("") == Docstring()
    assert parse("   Just one line.   ") == Docstring(summary="Just one line.")
    assert parse("Args:\n\nnot indented\n:bogus\n----\n") == Docstring()


def test_unrelated_sections_are_ignored():
    doc = parse("Sum.\n\nNote:\n    x: not a parameter.\n\nArgs:\n    y: a parameter.\n")
    assert doc.params == {"y": "a parameter."}


def test_a_summary_ending_in_a_colon_is_not_a_section():
    assert parse("Compute the following:\n\n- a\n- b").summary == "Compute the following:"
    assert parse("Example usage:\n\n    f(1)\n").summary == "Example usage:"


def test_sections_right_after_each_other():
    assert parse("Args:\nReturns:\n") == Docstring()
    assert parse("Args:\n    x: the x.\nReturns:\n    the y.\n") == Docstring(
        params={"x": "the x."}, returns="the y.")
