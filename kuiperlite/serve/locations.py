"""Where eKuiper keeps things, seen from a plugin process.

eKuiper runs a portable plugin in ``<plugins>/portable/<name>``, three levels
below its base folder in both of its layouts: ``<base>/plugins`` beside
``<base>/data`` and ``<base>/log`` when it runs from a folder, or the
packaged ``/var/lib/kuiper/plugins`` beside ``/var/lib/kuiper/data``, with
logs in ``/var/log/kuiper``. Its ``KuiperBaseKey`` environment variable
names the base when set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from .. import settings
from ..protocol import layout

PACKAGED_BASE = Path("/var/lib/kuiper")
PACKAGED_LOG = Path("/var/log/kuiper")


def ekuiper_base(cwd: Optional[str] = None) -> Optional[Path]:
    """eKuiper's base folder, or None when this process does not run under eKuiper."""
    named = os.environ.get("KuiperBaseKey")  # noqa: SIM112 - eKuiper spells it so
    if named:
        return Path(named)
    return layout.base_of(Path(cwd or os.getcwd()).resolve())


def ekuiper_log_dir(cwd: Optional[str] = None) -> Optional[Path]:
    """The folder eKuiper writes its own log to, when it exists."""
    base = ekuiper_base(cwd)
    if base is None:
        return None
    folder = PACKAGED_LOG if base == PACKAGED_BASE else base / "log"
    return folder if folder.is_dir() else None


def state_dir(cwd: Optional[str] = None) -> Path:
    """The folder of the plugins' state stores.

    ``KUIPERLITE_STATE_DIR`` when set; under eKuiper, ``kuiperlite`` in its
    data folder, which survives plugin updates and reinstalls (eKuiper deletes
    the plugin's own folder on both); elsewhere the user's state folder.
    """
    named = settings.STATE_DIR.read()
    if named:
        return Path(named)
    base = ekuiper_base(cwd)
    if base is not None:
        return base / "data" / "kuiperlite"
    home = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                           "state")
    return Path(home) / "kuiperlite"
