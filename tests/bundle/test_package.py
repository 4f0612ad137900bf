"""The installable zip: what goes in, what stays out, and how install.sh installs."""

import hashlib
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from kuiperlite import PluginError, launcher
from kuiperlite.bundle import package
from kuiperlite.declare.plugin import load

from conftest import EXAMPLES, unique
from wheels import tiny_wheel

SENSORS = EXAMPLES / "sensors" / "sensors.py"
PACKAGE = Path(launcher.__file__).parent
# What a plugin runs of kuiperlite: declare, protocol and serve, and five top-level
# modules; not bundle, dev, testing, pytest_plugin, nor the launcher (the executable).
KUIPERLITE = sorted(
    [f"kuiperlite/{name}" for name in ("__init__.py", "__main__.py", "cli.py", "errors.py",
                                             "settings.py")]
    + [f"kuiperlite/{path.relative_to(PACKAGE).as_posix()}"
       for folder in ("declare", "protocol", "serve") for path in (PACKAGE / folder).rglob("*.py")])


def names(zip_path: Path) -> list[str]:
    with zipfile.ZipFile(zip_path) as archive:
        return archive.namelist()


def test_sensors_zip_contents(tmp_path):
    path = package.build(load(str(SENSORS)), str(tmp_path), include=["calibration.json"])
    assert path == tmp_path / "sensors.zip"
    assert names(path) == sorted([
        "sensors.json", "sensors.py", "sensors_main.py", "units.py", "calibration.json",
        "requirements.txt",
        "install.sh", "sources/temperature.json", "sources/temperature.yaml",
        "sources/doors.json", "sources/doors.yaml", "sinks/alert.json", "sinks/jsonl.json",
        "functions/celsius.json", "functions/spread.json", "functions/epoch_ms.json",
        "functions/where.json", *KUIPERLITE])
    with zipfile.ZipFile(path) as archive:
        assert archive.read("requirements.txt") == (
            b"python-dateutil>=2.8\npynng<0.10,>=0.8.1\norjson>=3.9\nattrs>=22.2\n")
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in archive.infolist()}
        assert modes["install.sh"] == modes["sensors_main.py"] == 0o755
        assert modes["units.py"] == modes["sensors.py"] == 0o644
        assert archive.read("sensors.py") == SENSORS.read_bytes()


def test_the_zip_is_the_same_bytes_for_the_same_code(tmp_path):
    plugin = load(str(SENSORS))
    digests = {hashlib.sha256(package.build(plugin, str(tmp_path / d)).read_bytes()).hexdigest()
               for d in ("a", "b")}
    assert len(digests) == 1


def test_local_modules_follow_imports_transitively(tmp_path):
    (tmp_path / "helpers").mkdir()
    (tmp_path / "helpers" / "__init__.py").write_text("from helpers.maths import twice\n")
    (tmp_path / "helpers" / "maths.py").write_text("import shared\n\ndef twice(x):\n"
                                                   "    return 2 * x\n")
    (tmp_path / "shared.py").write_text("import json\n")
    (tmp_path / "unused.py").write_text("")
    entry = tmp_path / "plug.py"
    entry.write_text("import os\nimport helpers\nfrom kuiperlite import function\n")
    found = [p.relative_to(tmp_path).as_posix() for p in package.local_modules(entry)]
    assert found == ["helpers/__init__.py", "helpers/maths.py", "shared.py"]


def test_include_and_exclude(tmp_path, write_plugin):
    path = write_plugin('''
        from kuiperlite import function
        import extra_mod

        @function
        def f(x):
            return x
    ''')
    (path.parent / "extra_mod.py").write_text("")
    (path.parent / "model.bin").write_bytes(b"\x00\x01")
    (path.parent / "notes.txt").write_text("no")
    plugin = load(str(path))
    files = package.contents(plugin, include=["*.bin"], exclude=["extra_*"])
    assert "model.bin" in files and "notes.txt" not in files and "extra_mod.py" not in files
    with pytest.raises(PluginError, match=r"'\*\.onnx'"):
        package.contents(plugin, include=["*.onnx"])
    with pytest.raises(PluginError, match=r"'\.\./\*\.py'"):
        package.contents(plugin, include=["../*.py"])
    with pytest.raises(PluginError, match=path.name):
        package.contents(plugin, exclude=["*.py"])


def test_the_executable_is_kuiperlites_launcher_for_files_with_or_without_a_run_line(
        write_plugin):
    for main in (True, False):
        path = write_plugin("from kuiperlite import function\n\n@function\ndef f(x):\n"
                            "    return x\n", main=main)
        files = package.contents(load(str(path)))
        assert files[f"{path.stem}_main.py"] == Path(launcher.__file__).read_bytes()
        assert files[path.name] == path.read_bytes()


def test_user_requirements_win_over_kuiperlites(write_plugin, tmp_path):
    path = write_plugin("from kuiperlite import function\n\n@function\ndef f(x):\n"
                        "    return x\n")
    req = tmp_path / "reqs.txt"
    req.write_text("# pinned for the device\npynng==0.8.1\nrequests>=2  # http\n\nrequests>=2\n")
    files = package.contents(load(str(path)), requirements=str(req))
    assert files["requirements.txt"] == b"pynng==0.8.1\nrequests>=2\norjson>=3.9\nattrs>=22.2\n"
    with pytest.raises(PluginError, match="missing.txt"):
        package.contents(load(str(path)), requirements=str(tmp_path / "missing.txt"))


def zip_requirements(write_plugin, tmp_path, text):
    """The lines of the zip's requirements.txt for a plugin whose requirements are ``text``."""
    path = write_plugin("from kuiperlite import function\n\n@function\ndef f(x):\n"
                        "    return x\n")
    req = tmp_path / "reqs.txt"
    req.write_text(text)
    files = package.contents(load(str(path)), requirements=str(req))
    return files["requirements.txt"].decode().splitlines()


def test_requirement_lines_are_read_as_pip_reads_them(write_plugin, tmp_path):
    text = ("# pinned for the device\n"
            "pkg @ https://example.com/pkg-1.0.tar.gz#sha256=0123abcd  # the fork\n"
            "git+https://example.com/repo.git#egg=foo&subdirectory=sub\n"
            "requests>=2\t# http\n"
            "tool==1.0 \\\n"
            "  --hash=sha256:0123abcd\n"
            "--index-url https://pypi.example/simple\n"
            "   # an indented comment \\\n"
            "other#not-a-comment\n")
    assert zip_requirements(write_plugin, tmp_path, text) == [
        "pkg @ https://example.com/pkg-1.0.tar.gz#sha256=0123abcd",
        "git+https://example.com/repo.git#egg=foo&subdirectory=sub",
        "requests>=2",
        "tool==1.0   --hash=sha256:0123abcd",
        "--index-url https://pypi.example/simple",
        "other#not-a-comment",
        "pynng<0.10,>=0.8.1", "orjson>=3.9", "attrs>=22.2"]


@pytest.mark.parametrize("line", [
    "pynng @ https://example.com/pynng-0.8.1.tar.gz#sha256=00ff",
    "PyNNG[extra]@https://example.com/pynng.zip",
    "git+https://github.com/codypiersall/pynng#egg=pynng",
    "git+https://github.com/codypiersall/pynng.git@v0.8.1#egg=pynng&subdirectory=.",
    "-e git+https://github.com/codypiersall/pynng.git#egg=pynng",
    "--editable=git+https://github.com/codypiersall/pynng.git#egg=PyNNG",
    "https://example.com/wheels/pynng-0.8.1-cp311-cp311-manylinux_2_28_x86_64.whl",
    "pynng==0.8.1 --hash=sha256:00ff",
])
def test_pynng_given_by_a_url_or_an_option_is_required_once(write_plugin, tmp_path, line):
    assert zip_requirements(write_plugin, tmp_path, line + "\n") == [
        line, "orjson>=3.9", "attrs>=22.2"]


PEP508_LINES = [
    "Foo.Bar_baz>=1.0", "foo[extra1, extra2] >= 1 ; python_version >= '3.8'",
    "foo @ https://example.com/y.zip#sha256=ab", "foo[bar]@ git+https://example.com/y.git@v1",
    "foo (>=1.0)", "foo===1.0", "foo~=1.2", "A", "a-b.c_d!=2", "foo;sys_platform=='linux'",
    "zope.interface", "A__B--c..D",
]


@pytest.mark.parametrize("line", PEP508_LINES)
def test_the_project_of_a_requirement_is_the_one_packaging_reads(line):
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    assert package.project_of(line) == canonicalize_name(Requirement(line).name)


@given(name=st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,8}[A-Za-z0-9])?", fullmatch=True),
       extras=st.sampled_from(["", "[a]", " [a,b-c] "]),
       rest=st.sampled_from(["", ">=1.0", " == 2.*", " @ https://example.com/x.tar.gz#md5=00",
                             "; os_name == 'posix'", " (<3,>1)"]))
def test_any_pep508_name_is_read_as_packaging_reads_it(name, extras, rest):
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    assume(not re.search(r"\.(whl|zip|tar|tar\.gz|tgz|tar\.bz2|tbz|tar\.xz|txz)\Z", name,
                         re.IGNORECASE))  # see below
    line = name + extras + rest
    assert package.project_of(line) == canonicalize_name(Requirement(line).name)


@pytest.mark.parametrize(("line", "project"), [
    # pip takes a line ending like an archive, before a marker and less extras at its very
    # end, for the archive's path (its project is known only once built); packaging does not.
    ("0.TGZ", None), ("0.TGZ[a]", None), ("0.TGZ; os_name == 'posix'", None),
    ("0.TGZ>=1.0", "0-tgz"), ("0.TGZ [a,b-c] ", "0-tgz"), ("0.TGZ (<3,>1)", "0-tgz"),
    ("0.TGZ @ https://example.com/x.tar.gz#md5=00", "0-tgz"), ("a.zip[b]>=1", "a-zip"),
])
def test_a_name_ending_like_an_archive_is_read_as_pip_reads_it(line, project):
    assert package.project_of(line) == project


@pytest.mark.parametrize("line", ["-r more.txt", "--requirement=more.txt",
                                  "-c constraints.txt", "--constraint constraints.txt"])
def test_a_requirements_file_naming_another_file_is_refused(write_plugin, tmp_path, line):
    with pytest.raises(PluginError, match=re.escape(repr(line))):
        zip_requirements(write_plugin, tmp_path, f"requests\n{line}\n")


HOSTILE = "$(touch marker1)`touch marker2`;touch marker3 'q\"\ntouch marker4 "


@pytest.mark.parametrize("field", ["conda_env", "name"])
def test_install_sh_runs_nothing_a_value_in_it_holds(write_plugin, tmp_path, field):
    """Each value install.sh holds reaches conda (a stand-in on PATH) and echo as it was:
    nothing in it runs, though a conda env and a plugin name are the author's text."""
    path = write_plugin("import kuiperlite\n\n@kuiperlite.function\ndef f(x):\n"
                        "    return x\n")
    plugin = load(str(path))
    env, name = ("edge" + HOSTILE, plugin.name) if field == "conda_env" else \
        ("edge", plugin.name + HOSTILE)
    plugin = plugin._replace(name=name, about=plugin.about._replace(conda_env=env))
    files = package.contents(plugin)
    folder = tmp_path / "plugin"
    folder.mkdir()
    (folder / "install.sh").write_bytes(files["install.sh"])
    (folder / "requirements.txt").write_bytes(files["requirements.txt"])
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    conda = bin_dir / "conda"
    conda.write_text(f"#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done "
                     f"> {tmp_path}/args\n")
    conda.chmod(0o755)
    (bin_dir / "my python").write_text("#!/bin/sh\nexit 1\n")  # conda stands in for it
    (bin_dir / "my python").chmod(0o755)
    out = subprocess.run(["/bin/sh", "install.sh", "my python"], cwd=folder, capture_output=True,
                         text=True, env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, timeout=30)
    assert not list(tmp_path.rglob("marker*")), "install.sh ran a command from a value"
    assert out.returncode == 0, out.stderr
    args = (tmp_path / "args").read_text().split("\0")[:-1]
    assert args == ["run", "-n", env, "my python", "-m", "pip", "install",
                    "--disable-pip-version-check", "-r", "requirements.txt"]
    assert out.stdout == f"installing the requirements of {name} with pip\n"


def test_install_sh_builds_an_environment_in_the_plugin_folder_from_the_wheels(
        tmp_path, bare_python):
    """install.sh builds .venv beside itself with the python it is given, offline from
    the bundled wheels; the python is left as it was. Run again, it builds a new
    environment beside the old and swaps it in; when that fails, the old one stays."""
    folder = tmp_path / "plugin"
    folder.mkdir()
    (folder / "install.sh").write_bytes(package.contents(load(str(SENSORS)))["install.sh"])
    (folder / "requirements.txt").write_text("kltpin==1.0\n")
    wheels = folder / "wheels"
    tiny_wheel(wheels, "kltpin", "1.0")
    offline = dict(os.environ, PIP_INDEX_URL="http://127.0.0.1:9/offline")
    out = subprocess.run(["/bin/sh", "install.sh", bare_python], cwd=folder, env=offline,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    environment = folder / package.ENVIRONMENT
    assert out.stdout.startswith(f"building the environment of sensors in {environment} "
                                 f"with {bare_python}\n")
    assert out.stdout.endswith(f"the environment of sensors is ready in {environment}\n")

    def version(python: str) -> str:
        return subprocess.run([python, "-c", "import kltpin; print(kltpin.VERSION)"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=30).stdout

    assert version(str(environment / "bin" / "python")) == "1.0\n"
    assert version(bare_python) == ""
    tiny_wheel(wheels, "kltpin", "2.0")
    (folder / "requirements.txt").write_text("kltpin==2.0\n")
    subprocess.run(["/bin/sh", "install.sh", bare_python], cwd=folder, env=offline,
                   check=True, capture_output=True, timeout=120)
    assert version(str(environment / "bin" / "python")) == "2.0\n"
    (folder / "requirements.txt").write_text("kltpin==3.0\n")  # no such wheel
    out = subprocess.run(["/bin/sh", "install.sh", bare_python], cwd=folder, env=offline,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "kltpin==3.0" in out.stderr
    assert version(str(environment / "bin" / "python")) == "2.0\n"
    assert sorted(p.name for p in folder.iterdir()) == [
        ".venv", "install.sh", "requirements.txt", "wheels"]


@pytest.mark.parametrize(("platform", "first", "includes"), [
    ("manylinux_2_28_aarch64", "manylinux_2_28_aarch64", "manylinux2014_aarch64"),
    ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux1_x86_64"),
    ("win_amd64", "win_amd64", "win_amd64"),
])
def test_platform_tags(platform, first, includes):
    tags = package.platform_tags(platform)
    assert tags[0] == first and includes in tags


def test_package_command(tmp_path):
    out = subprocess.run([sys.executable, "-m", "kuiperlite", "package", str(SENSORS), "-o",
                          str(tmp_path), "--include", "calibration.json"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(tmp_path / "sensors.zip")
    bad = subprocess.run([sys.executable, "-m", "kuiperlite", "package", str(SENSORS), "-o",
                          str(tmp_path), "--include", "*.nothing"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert "'*.nothing'" in bad.stderr
    assert not list(tmp_path.glob("*.partial"))


@pytest.fixture
def linked(tmp_path):
    """A plugin folder with links out of it, and one link within it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("private key")
    helper = unique("helper")
    (outside / f"{helper}.py").write_text("X = 1\n")
    folder = tmp_path / "plugin"
    folder.mkdir()
    path = folder / f"{unique('p')}.py"
    path.write_text(f"from kuiperlite import function\nimport {helper}\n\n@function\n"
                    "def f(x):\n    return x\n")
    (folder / f"{helper}.py").symlink_to(outside / f"{helper}.py")
    (folder / "secret.txt").symlink_to(outside / "secret.txt")
    (folder / "shared").symlink_to(outside, target_is_directory=True)
    (folder / "data").mkdir()
    (folder / "data" / "real.txt").write_text("ok")
    (folder / "data" / "alias.txt").symlink_to(folder / "data" / "real.txt")
    return path, helper, folder


def test_package_never_follows_a_link_out_of_the_plugins_folder(linked, tmp_path):
    path, helper, folder = linked
    plugin = load(str(path))
    module = [f"{helper}.py"]
    for include, exclude, name in ((["*.txt"], module, "secret.txt"),
                                   (["shared/*.txt"], module, "shared/secret.txt"),
                                   ([], [], f"{helper}.py")):  # a module the plugin imports
        with pytest.raises(PluginError) as info:
            package.contents(plugin, include=include, exclude=exclude)
        assert str(info.value).startswith(f"{name} ")
        assert f" {tmp_path / 'outside' / Path(name).name};" in str(info.value)
    # a link within the folder is shipped under its own name; an excluded link is no matter
    files = package.contents(plugin, include=["data/*.txt", "*.txt"],
                               exclude=["secret.txt", f"{helper}.py"])
    assert files["data/alias.txt"] == files["data/real.txt"] == b"ok"
    assert "secret.txt" not in files and f"{helper}.py" not in files
    out = subprocess.run([sys.executable, "-m", "kuiperlite", "package", str(path), "-o",
                          str(tmp_path / "dist"), "--include", "shared/*.txt", "--exclude",
                          f"{helper}.py"],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "shared/secret.txt" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "dist").exists() or not list((tmp_path / "dist").iterdir())
