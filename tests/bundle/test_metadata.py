"""Metadata from code, compared field by field with hand-written expected files."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from kuiperlite import DefinitionError
from kuiperlite.bundle import metadata
from kuiperlite.declare.plugin import load

from conftest import EXAMPLES, FIXTURES

EXPECTED = FIXTURES / "expected"


def assert_fields(expected: Any, actual: Any, path: str = "") -> None:
    """Compare two JSON values key by key, naming the first field that differs."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path or 'top'}: expected an object, got {actual!r}"
        assert list(actual) == list(expected), f"{path or 'top'}: keys {list(actual)}"
        for key in expected:
            assert_fields(expected[key], actual[key], f"{path}.{key}" if path else key)
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{path}: {actual!r}"
        for i, (want, got) in enumerate(zip(expected, actual)):
            assert_fields(want, got, f"{path}[{i}]")
    else:
        assert actual == expected and type(actual) is type(expected), \
            f"{path}: expected {expected!r}, got {actual!r}"


def expected_files(name: str) -> list[str]:
    root = EXPECTED / name
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize(("plugin", "relative"), [
    *[("pysam", f) for f in expected_files("pysam")],
    *[("sensors", f) for f in expected_files("sensors")],
])
def test_generated_metadata_matches_the_expected_files(plugin, relative):
    files = metadata.files(load(str(EXAMPLES / plugin / f"{plugin}.py")))
    expected = (EXPECTED / plugin / relative).read_text(encoding="utf-8")
    actual = files[relative].decode()
    if relative.endswith(".json"):
        assert_fields(json.loads(expected), json.loads(actual))
    else:
        assert yaml.safe_load(actual) == yaml.safe_load(expected)
        assert actual == expected


def test_every_symbol_gets_its_files():
    files = metadata.files(load(str(EXAMPLES / "sensors" / "sensors.py")))
    assert list(files) == [
        "sensors.json", "sources/temperature.json", "sources/temperature.yaml",
        "sources/doors.json", "sources/doors.yaml", "sinks/alert.json", "sinks/jsonl.json",
        "functions/celsius.json", "functions/spread.json", "functions/epoch_ms.json",
        "functions/where.json"]
    assert all(content.endswith(b"\n") for content in files.values())


def test_output_is_deterministic(tmp_path):
    path = str(EXAMPLES / "sensors" / "sensors.py")
    out = [subprocess.run([sys.executable, "-m", "kuiperlite", "meta", path, "-o",
                           str(tmp_path / str(i))], capture_output=True, text=True, check=True)
           for i in range(2)]
    assert out[0].stdout.replace("/0/", "/1/") == out[1].stdout
    for file in (tmp_path / "0").rglob("*.*"):
        assert file.read_bytes() == (tmp_path / "1" / file.relative_to(tmp_path / "0")).read_bytes()


def test_non_ascii_text_survives(write_plugin):
    path = write_plugin('''
        """温度插件。"""
        from kuiperlite import source

        @source
        def wendu(ctx, *, danwei: str = "摄氏度"):
            """读取温度。

            Args:
                danwei: 温度单位。
            """
            yield {}
    ''')
    raw = metadata.files(load(str(path)))["sources/wendu.json"]
    assert "读取温度。".encode() in raw  # written as UTF-8, not \\u escapes
    field = json.loads(raw)["properties"]["default"][0]
    assert (field["default"], field["hint"]["en_US"]) == ("摄氏度", "温度单位。")
    assert yaml.safe_load(metadata.files(load(str(path)))["sources/wendu.yaml"]) == {
        "default": {"danwei": "摄氏度"}}


@pytest.mark.parametrize(("name", "label"), [
    ("interval", "Interval"), ("send_timeout", "Send timeout"), ("sendTimeout", "Send timeout"),
    ("URLPath", "Urlpath"), ("x", "X")])
def test_labels(name, label):
    assert metadata.label(name) == label


def test_required_fields_get_zero_defaults_and_the_yaml_leaves_them_out(write_plugin):
    path = write_plugin('''
        from kuiperlite import source

        @source
        def s(ctx, *, url: str, port: int, tags: list[str], retries: int = 3):
            yield {}
    ''')
    files = metadata.files(load(str(path)))
    fields = json.loads(files["sources/s.json"])["properties"]["default"]
    assert [(f["name"], f["default"], f["optional"]) for f in fields] == [
        ("url", "", False), ("port", 0, False), ("tags", [], False), ("retries", 3, True)]
    assert files["sources/s.yaml"] == b"default:\n  retries: 3\n"


def test_the_executable_is_the_launcher_named_after_the_module_run_line_or_not(write_plugin):
    with_run = load(str(write_plugin("from kuiperlite import function\n\n@function\n"
                                     "def f(x):\n    return x\n")))
    without = load(str(write_plugin("import kuiperlite\nABOUT = kuiperlite.About(name='other')"
                                    "\n@kuiperlite.function\ndef f(x):\n    return x\n",
                                    main=False)))
    assert metadata.plugin_json(with_run)["executable"] == f"{Path(with_run.path).stem}_main.py"
    assert metadata.plugin_json(without)["executable"] == f"{Path(without.path).stem}_main.py"


def test_conda_env_goes_into_the_plugin_json(write_plugin):
    plugin = load(str(write_plugin('''
        import kuiperlite
        ABOUT = kuiperlite.About(conda_env="edge-py")

        @kuiperlite.function
        def f(x):
            return x
    ''')))
    info = metadata.plugin_json(plugin)
    assert (info["virtualEnvType"], info["env"]) == ("conda", "edge-py")


def test_a_config_hint_a_rule_cannot_carry_is_refused_at_collection(write_plugin):
    path = write_plugin('''
        from kuiperlite import sink

        @sink
        def out(data, *, key: bytes = b""):
            pass
    ''')
    with pytest.raises(DefinitionError) as info:
        load(str(path))  # refused before any consumer: serving it would work, meta would not
    assert info.value.where == f"sink 'out' ({path.name}:4)"
    assert "'key'" in info.value.problem


def test_every_hint_collection_accepts_works_end_to_end(write_plugin):
    path = write_plugin('''
        from kuiperlite import sink

        @sink
        def out(data, *, rates: list[float] = [1.0]):
            pass
    ''')
    plugin = load(str(path))
    assert plugin.sinks["out"].bind_config({"rates": [1, "2.5"]}) == {"rates": [1.0, 2.5]}
    [field] = orjson.loads(metadata.files(plugin)["sinks/out.json"])["properties"]
    assert (field["type"], field["control"]) == ("list_float", "list")


@pytest.mark.parametrize(("code", "noun"), [
    ("from kuiperlite import source\n\n@source(name='my source')\ndef s(ctx):\n    yield {}\n",
     "(s at {file}:3)"),
    ("from kuiperlite import function\n\n@function\ndef f(x):\n    return x\n\n"
     "@function(name='f')\ndef g(x):\n    return x\n", "(g at {file}:7)"),
    ("x = 1\n", "{file}"),
    ("from kuiperlite import source\n\n@source\ndef s(ctx, *, w: bytes = b''):\n"
     "    yield {}\n", "({file}:3)"),
])
def test_meta_command_errors_are_one_line(write_plugin, tmp_path, code, noun):
    path = write_plugin(code, main=False)
    out = subprocess.run([sys.executable, "-m", "kuiperlite", "meta", str(path), "-o",
                          str(tmp_path / "out")], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.startswith("kuiperlite: ") and noun.format(file=path.name) in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_a_dynamic_property_s_hint_says_it_takes_record_fields(write_plugin):
    path = write_plugin('''
        from kuiperlite import Dynamic, sink

        @sink
        def publish(data, *, topic: Dynamic[str], qos: Dynamic[int] = 0, retain: bool = False):
            """Publish each record.

            Args:
                topic: the topic to publish to.
                retain: keep the last message.
            """
    ''')
    fields = json.loads(metadata.files(load(str(path)))["sinks/publish.json"])["properties"]
    dynamic = "It can be dynamic: {{.field}} is replaced by that field of each record."
    assert [(f["name"], f["type"], f["default"], f["hint"]["en_US"]) for f in fields] == [
        ("topic", "string", "", f"the topic to publish to. {dynamic}"),
        ("qos", "int", 0, dynamic),
        ("retain", "bool", False, "keep the last message.")]
    assert fields[0]["hint"]["zh_CN"] == fields[0]["hint"]["en_US"]
