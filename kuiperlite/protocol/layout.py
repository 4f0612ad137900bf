"""eKuiper's folders for a portable plugin, and the names that may become files in them.

eKuiper's installer puts a plugin's code and json in ``plugins/portable/<name>/``
and each symbol's metadata in ``etc/sources``, ``etc/sinks`` or
``etc/functions`` (``<symbol>.json``, and a source's or sink's ``<symbol>.yaml``);
the plugin zip holds that metadata in ``sources/``, ``sinks/`` and
``functions/`` at its root. Names the host or a zip supplies become file and
folder names there and in the socket folder, so the rules for them live here
too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..declare.kinds import FUNCTION, SINK, SOURCE, Kind
from ..declare.plugin import PLUGIN_NAME_PATTERN

PLUGINS = Path("plugins", "portable")  # under eKuiper's base folder
ETC = "etc"
# The files eKuiper keeps of a symbol of each kind, in the zip and under etc/.
SUFFIXES = {SOURCE: (".yaml", ".json"), SINK: (".yaml", ".json"), FUNCTION: (".json",)}
PLUGIN_NAME_RULE = "a plugin name holds only letters, digits, _ and -"
FILE_NAME_RULE = "must not hold '/', '..', NUL or control characters"


def plugin_dir(base: Path, name: str) -> Path:
    """The folder of plugin ``name`` under eKuiper's ``base``: its code and its json."""
    return base / PLUGINS / name


def base_of(folder: Path) -> Optional[Path]:
    """eKuiper's base folder when ``folder`` is a plugin's folder under it, else None."""
    depth = len(PLUGINS.parts)
    if folder.parent.parts[-depth:] == PLUGINS.parts:
        return folder.parents[depth]
    return None


def plugin_json(base: Path, name: str) -> Path:
    """The installed json of plugin ``name``."""
    return plugin_dir(base, name) / f"{name}.json"


def plugin_zip(base: Path, name: str) -> Path:
    """Where eKuiper keeps the zip of plugin ``name`` it downloaded."""
    return base / PLUGINS / f"{name}.zip"


def metadata_dir(base: Path, kind: Kind) -> Path:
    """The folder of the metadata of symbols of ``kind`` under eKuiper's ``base``."""
    return base / ETC / kind.folder


def metadata_file(base: Path, kind: Kind, symbol: str, suffix: str = ".json") -> Path:
    """The installed metadata (``.json``) or default profile (``.yaml``) of a symbol."""
    return metadata_dir(base, kind) / f"{symbol}{suffix}"


def zip_metadata(kind: Kind, symbol: str, suffix: str = ".json") -> str:
    """The name of a symbol's metadata in the plugin zip (``sources/feed.yaml``)."""
    return f"{kind.folder}/{symbol}{suffix}"


def installed_path(base: Path, name: str, entry: str) -> Path:
    """Where eKuiper's installer puts the zip entry ``entry`` of plugin ``name``:
    metadata under ``etc/``, every other file in the plugin's folder."""
    if entry.startswith(tuple(f"{kind.folder}/" for kind in SUFFIXES)):
        return base / ETC / entry
    return plugin_dir(base, name) / entry


def name_fault(value: str, *, kept: bool = False) -> Optional[str]:
    """What keeps ``value`` from becoming a file or folder name; None when nothing.

    Args:
        value: the name.
        kept: the name is a plugin's, which eKuiper keeps and names its folder,
            zip and json after: only letters, digits, ``_`` and ``-`` (eKuiper's
            rule for the names it keeps). Otherwise the name is one the host
            sends (a rule, an op, a symbol), which only must not reach another
            folder or hold characters no file name should.

    Returns:
        The rule it breaks (:data:`PLUGIN_NAME_RULE` or :data:`FILE_NAME_RULE`).
    """
    if kept:
        return None if PLUGIN_NAME_PATTERN.match(value) else PLUGIN_NAME_RULE
    if "/" in value or ".." in value or any(c < " " or "\x7f" <= c <= "\x9f" for c in value):
        return FILE_NAME_RULE
    return None
