"""The installer and ``deploy --into``: the folder eKuiper's installer would leave."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kuiperlite.bundle import package
from kuiperlite.declare.plugin import load
from kuiperlite.dev.host import PORTABLE_CONFIG, Host
from kuiperlite.dev.installer import InstallFailed, check_plugin_name, install, uninstall
from kuiperlite.launcher import ENVIRONMENT

from conftest import EXAMPLES, unique
from wheels import tiny_wheel, with_wheels


@pytest.fixture(scope="module")
def pysam_zip(tmp_path_factory):
    return package.build(load(str(EXAMPLES / "pysam" / "pysam.py")),
                           str(tmp_path_factory.mktemp("pysam")))


def tree(base: Path) -> dict[str, bytes]:
    """Every file under ``base`` by its relative path, with its bytes."""
    return {str(p.relative_to(base)): p.read_bytes() for p in base.rglob("*") if p.is_file()}


def with_entries(src: Path, dst: Path, add=None, drop=()) -> Path:
    """A copy of a zip with entries replaced or added, and some dropped."""
    add = dict(add or {})
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w") as new:
        for entry in old.infolist():
            if entry.filename not in drop:
                new.writestr(entry, add.pop(entry.filename, old.read(entry)))
        for name, data in add.items():
            new.writestr(name, data)
    return dst


def deploy(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "kuiperlite", "deploy", *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=cwd)


def test_the_pysam_zip_lands_where_ekuipers_installer_puts_it(pysam_zip, tmp_path):
    done = install(str(pysam_zip), str(tmp_path), run_script=False)
    assert done.name == "pysam" and done.plugin_dir == tmp_path / "plugins/portable/pysam"
    got = tree(tmp_path)
    plugin = "plugins/portable/pysam/"
    with zipfile.ZipFile(pysam_zip) as archive:
        kuiperlite = [name for name in archive.namelist() if name.startswith("kuiperlite/")]
    assert kuiperlite
    assert sorted(got) == sorted(
        ["etc/functions/revert.json", "etc/sinks/print.json", "etc/sources/pyjson.json",
         "etc/sources/pyjson.yaml"]
        + [plugin + f for f in ("install.sh", "pysam.json", "pysam.py", "pysam_main.py",
                                "requirements.txt", *kuiperlite)])
    with zipfile.ZipFile(pysam_zip) as archive:
        for name in archive.namelist():
            where = "etc/" if name.startswith(("sources/", "sinks/", "functions/")) else plugin
            assert got[where + name] == archive.read(name), name
    assert os.access(tmp_path / plugin / "pysam_main.py", os.X_OK)


def test_deploy_into_packages_a_py_file_first(tmp_path):
    base = tmp_path / "ekuiper"
    out = deploy(EXAMPLES / "sensors" / "sensors.py", "--into", base, "--no-install",
                 "--include", "calibration.json")
    assert out.returncode == 0, out.stderr
    plugin = "plugins/portable/sensors/"
    assert f"installed plugin sensors into {base / plugin[:-1]}" in out.stdout
    assert "install.sh not run (--no-install)" in out.stdout
    got = tree(base)
    meta = sorted(name for name in got if name.startswith("etc/"))
    assert meta == ["etc/functions/celsius.json", "etc/functions/epoch_ms.json",
                    "etc/functions/spread.json", "etc/functions/where.json",
                    "etc/sinks/alert.json", "etc/sinks/jsonl.json",
                    "etc/sources/doors.json", "etc/sources/doors.yaml",
                    "etc/sources/temperature.json", "etc/sources/temperature.yaml"]
    for name in ("calibration.json", "sensors.py", "units.py"):
        assert got[plugin + name] == (EXAMPLES / "sensors" / name).read_bytes()
    assert {name for name in got if not name.startswith(("etc/", plugin + "kuiperlite/"))} == {
        plugin + f for f in ("calibration.json", "install.sh", "requirements.txt",
                             "sensors.json", "sensors.py", "sensors_main.py", "units.py")}


def test_install_sh_runs_in_the_plugin_folder_with_the_shell_paras(pysam_zip, tmp_path):
    script = b'echo "$(pwd) $*" > ran.txt\n'
    zip_path = with_entries(pysam_zip, tmp_path / "pysam.zip", add={"install.sh": script})
    base = tmp_path / "ekuiper"
    out = deploy(zip_path, "--into", base, "--shell-para", "/usr/bin/python3",
                 "--shell-para", "x y")
    assert out.returncode == 0, out.stderr
    plugin_dir = base / "plugins/portable/pysam"
    assert (plugin_dir / "ran.txt").read_text() == f"{plugin_dir} /usr/bin/python3 x y\n"
    assert "install.sh finished in " in out.stdout


def test_a_failing_install_sh_leaves_nothing_behind(pysam_zip, tmp_path):
    zip_path = with_entries(pysam_zip, tmp_path / "pysam.zip",
                            add={"install.sh": b"echo 'no network here' >&2\nexit 3\n"})
    base = tmp_path / "ekuiper"
    out = deploy(zip_path, "--into", base)
    assert out.returncode == 1
    assert out.stderr == "kuiperlite: install.sh failed with exit code 3:\nno network here\n"
    assert tree(base) == {}


@pytest.mark.parametrize("change, message", [
    (dict(drop=["pysam_main.py"]), "missing required files: pysam_main.py"),
    (dict(drop=["pysam.json"]), "missing pysam.json at the zip's root"),
    (dict(add={"pysam.json": b"[1]"}), "pysam.json must hold an object, not a list"),
    (dict(add={"../evil.sh": b"x"}), "the zip holds a path that leaves its folder: '../evil.sh'"),
])
def test_a_bad_zip_is_one_sentence_and_installs_nothing(pysam_zip, tmp_path, change, message):
    zip_path = with_entries(pysam_zip, tmp_path / "pysam.zip", **change)
    base = tmp_path / "ekuiper"
    out = deploy(zip_path, "--into", base, "--no-install")
    assert out.returncode == 1
    assert out.stderr.startswith(f"kuiperlite: {message}") and out.stderr.count("\n") == 1
    assert not base.exists() or tree(base) == {}


def test_not_a_zip_and_a_wrong_name(tmp_path):
    bad = tmp_path / "plug.zip"
    bad.write_text("hello")
    out = deploy(bad, "--into", tmp_path / "e")
    assert (out.returncode, out.stderr) == (
        1, "kuiperlite: plug.zip is not a zip file (File is not a zip file)\n")
    with pytest.raises(InstallFailed, match="the zip must be named <plugin name>.zip"):
        install(str(tmp_path / "a b.zip"), str(tmp_path / "e"))


def test_a_plugin_name_is_ekuipers_kind_of_name():
    for name in ["a", "My_plugin-2", "9"]:
        assert check_plugin_name(name) == name
    for name in ["", "../x", "/abs/x", "a b", "a.b", "a\x00b", "x\n", "é"]:
        with pytest.raises(InstallFailed) as caught:
            check_plugin_name(name)
        assert str(caught.value) == (f"invalid name {name!r}: a plugin name holds only "
                                     "letters, digits, _ and -")


def test_an_installed_plugin_is_replaced_only_with_force(pysam_zip, tmp_path):
    base = tmp_path / "ekuiper"
    install(str(pysam_zip), str(base), run_script=False)
    out = deploy(pysam_zip, "--into", base, "--no-install")
    assert out.returncode == 1
    assert out.stderr == (f"kuiperlite: plugin pysam is already installed in "
                          f"{base / 'plugins/portable/pysam'}; pass --force to replace it\n")
    # the new version has no sink: --force removes the old one's metadata, as eKuiper's
    # delete before a reinstall does
    info = b'{"name": "pysam", "version": "2", "language": "python", ' \
           b'"executable": "pysam_main.py", "sources": ["pyjson"], "functions": ["revert"]}'
    newer = with_entries(pysam_zip, tmp_path / "pysam.zip", add={"pysam.json": info},
                         drop=["sinks/print.json"])
    (base / "plugins/portable/pysam/leftover.txt").write_text("old")
    out = deploy(newer, "--into", base, "--no-install", "--force")
    assert out.returncode == 0, out.stderr
    got = tree(base)
    assert "etc/sinks/print.json" not in got
    assert "plugins/portable/pysam/leftover.txt" not in got
    assert got["plugins/portable/pysam/pysam.json"] == info


def test_a_relative_folder_is_the_folder_it_names_from_where_deploy_runs(pysam_zip, tmp_path):
    zip_path = with_entries(pysam_zip, tmp_path / "pysam.zip",
                            add={"install.sh": b'echo "$(pwd) $*" > ran.txt\n'})
    out = deploy(zip_path, "--into", "ekuiper", "--shell-para", "x", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    plugin_dir = tmp_path / "ekuiper/plugins/portable/pysam"
    assert out.stdout.startswith(f"installed plugin pysam into {plugin_dir} (")
    assert f"symbol metadata in {tmp_path / 'ekuiper/etc'})" in out.stdout
    assert (plugin_dir / "ran.txt").read_text() == f"{plugin_dir} x\n"


def test_a_linked_plugin_folder_is_replaced_never_written_through(pysam_zip, tmp_path):
    """As eKuiper's delete before a reinstall (os.RemoveAll) removes the link, not what
    it points to; links where the symbol metadata goes are replaced the same way."""
    zip_path = with_entries(pysam_zip, tmp_path / "pysam.zip",
                            add={"install.sh": b'echo "$(pwd)" > ran.txt\n'})
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "mine.txt").write_text("mine")
    (outside / "mine.yaml").write_text("mine")
    base = tmp_path / "ekuiper"
    plugin_dir = base / "plugins/portable/pysam"
    plugin_dir.parent.mkdir(parents=True)
    plugin_dir.symlink_to(outside, target_is_directory=True)
    (base / "etc/sources").mkdir(parents=True)
    (base / "etc/sources/pyjson.yaml").symlink_to(outside / "mine.yaml")
    out = deploy(zip_path, "--into", base)
    assert (out.returncode, out.stderr) == (
        1, f"kuiperlite: plugin pysam is already installed in {plugin_dir}; pass --force to "
           "replace it\n")
    out = deploy(zip_path, "--into", base, "--force")
    assert out.returncode == 0, out.stderr
    assert tree(outside) == {"mine.txt": b"mine", "mine.yaml": b"mine"}
    assert not plugin_dir.is_symlink() and (plugin_dir / "ran.txt").read_text() == \
        f"{plugin_dir}\n"
    assert not (base / "etc/sources/pyjson.yaml").is_symlink()
    with zipfile.ZipFile(pysam_zip) as archive:
        assert tree(base)["etc/sources/pyjson.yaml"] == archive.read("sources/pyjson.yaml")
        assert tree(plugin_dir)["pysam.json"] == archive.read("pysam.json")


def test_a_dangling_link_in_place_of_the_plugin_folder(pysam_zip, tmp_path):
    base = tmp_path / "ekuiper"
    plugin_dir = base / "plugins/portable/pysam"
    plugin_dir.parent.mkdir(parents=True)
    plugin_dir.symlink_to(tmp_path / "gone")
    out = deploy(pysam_zip, "--into", base, "--no-install")
    assert (out.returncode, out.stderr) == (
        1, f"kuiperlite: plugin pysam is already installed in {plugin_dir}; pass --force to "
           "replace it\n")
    out = deploy(pysam_zip, "--into", base, "--no-install", "--force")
    assert out.returncode == 0, out.stderr
    assert not (tmp_path / "gone").exists()
    assert plugin_dir.is_dir() and not plugin_dir.is_symlink()
    assert (plugin_dir / "pysam_main.py").is_file()


PINNED = '''\
from kuiperlite import function


@function
def pinned() -> str:
    """The version of kltpin the plugin runs with (imported when called: package
    imports the plugin where kltpin is not)."""
    import kltpin

    return kltpin.VERSION
'''


def test_an_upgrade_whose_install_fails_leaves_the_old_plugin_runnable(
        tmp_path, runtime_wheels, bare_python):
    pins = tmp_path / "pins"
    tiny_wheel(pins, "kltpin", "1.0")
    name = unique("upg")
    source = tmp_path / "src" / f"{name}.py"
    source.parent.mkdir()
    source.write_text(PINNED)
    requirements = source.with_name("requirements.txt")
    base = tmp_path / "ekuiper"
    plugin_dir = base / "plugins" / "portable" / name

    def packaged(version: str) -> Path:
        requirements.write_text(f"kltpin=={version}\n")
        zip_path = package.build(load(str(source)), str(tmp_path / version))
        return with_wheels(zip_path, runtime_wheels, pins)

    out = deploy(packaged("1.0"), "--into", base, "--shell-para", bare_python)
    assert out.returncode == 0, out.stderr
    before = tree(base)
    assert (plugin_dir / ENVIRONMENT / "bin" / "python").exists()
    out = deploy(packaged("3.0"), "--into", base, "--shell-para", bare_python, "--force")
    assert out.returncode == 1 and "kltpin==3.0" in out.stderr  # no wheel of 3.0 anywhere
    assert tree(base) == before  # the old plugin, its environment and metadata, as they were
    host = Host(name)
    try:
        host.spawn([bare_python, "-u", str(plugin_dir / f"{name}_main.py"), PORTABLE_CONFIG],
                   str(plugin_dir), {k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
        host.wait_handshake(60)
        with host.function("pinned") as fn:
            assert fn.call() == "1.0"
    finally:
        host.close()
    uninstall(base, name)  # as eKuiper's delete: the plugin's environment goes with it
    assert not plugin_dir.exists() and not (base / "plugins" / f".{name}.previous").exists()
