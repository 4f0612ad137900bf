"""locations: where eKuiper keeps things, seen from a plugin's folder."""

from pathlib import Path

from kuiperlite.serve import locations


def test_a_plugin_folder_under_ekuiper_names_its_base(tmp_path, monkeypatch):
    monkeypatch.delenv("KuiperBaseKey", raising=False)
    folder = tmp_path / "kuiper" / "plugins" / "portable" / "tail"
    folder.mkdir(parents=True)
    assert locations.ekuiper_base(str(folder)) == tmp_path / "kuiper"
    assert locations.ekuiper_base(str(tmp_path)) is None
    monkeypatch.setenv("KuiperBaseKey", "/opt/kuiper")
    assert locations.ekuiper_base(str(tmp_path)) == Path("/opt/kuiper")


def test_state_lives_outside_the_plugins_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("KuiperBaseKey", raising=False)
    monkeypatch.delenv("KUIPERLITE_STATE_DIR", raising=False)
    folder = tmp_path / "kuiper" / "plugins" / "portable" / "tail"
    folder.mkdir(parents=True)
    # eKuiper deletes plugins/portable/<name> on every update: state goes to its data folder.
    assert locations.state_dir(str(folder)) == tmp_path / "kuiper" / "data" / "kuiperlite"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert locations.state_dir(str(tmp_path)) == tmp_path / "xdg" / "kuiperlite"
    monkeypatch.setenv("KUIPERLITE_STATE_DIR", str(tmp_path / "mine"))
    assert locations.state_dir(str(folder)) == tmp_path / "mine"


def test_the_log_folder_is_ekuipers_when_it_exists(tmp_path, monkeypatch):
    monkeypatch.delenv("KuiperBaseKey", raising=False)
    folder = tmp_path / "kuiper" / "plugins" / "portable" / "tail"
    folder.mkdir(parents=True)
    assert locations.ekuiper_log_dir(str(folder)) is None
    (tmp_path / "kuiper" / "log").mkdir()
    assert locations.ekuiper_log_dir(str(folder)) == tmp_path / "kuiper" / "log"
