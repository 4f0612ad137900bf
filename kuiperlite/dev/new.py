"""``new``: a plugin folder to start from, written from the templates beside this module.

``new NAME`` writes ``NAME/NAME.py`` (a source, a sink and a function),
``NAME/test_NAME.py`` (kuiperlite.testing and the ``kuiperlite_host``
fixture; it passes as written) and ``NAME/README.md``, whose commands run
the Python that ran ``new`` (the one that has kuiperlite). It never
overwrites: a NAME that exists is refused.
"""

from __future__ import annotations

import re
import shlex
import string
import sys
from importlib import resources
from pathlib import Path

from ..errors import KuiperliteError

# NAME is a module name and the prefix of its symbols' names.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
FILES = (("plugin.py.tmpl", "{name}.py"), ("test_plugin.py.tmpl", "test_{name}.py"),
         ("README.md.tmpl", "README.md"))


class NewFailed(KuiperliteError):
    """The plugin folder cannot be made; the message says why."""


def new(name: str, parent: str = ".") -> list[Path]:
    """Write the folder ``parent/name`` for a new plugin; the files written.

    Raises:
        NewFailed: the name is not a Python module name, or the folder exists.
    """
    if not _NAME.fullmatch(name):
        raise NewFailed(f"{name!r} cannot name a plugin: use a letter, then letters, digits "
                        "and _ (it is the module's name and its symbols' prefix)")
    folder = Path(parent) / name
    if folder.exists():
        raise NewFailed(f"{folder} exists already; new never overwrites: choose another "
                        "name or remove it")
    templates = resources.files("kuiperlite.dev") / "templates"
    texts = {target.format(name=name):
             string.Template(templates.joinpath(source).read_text(encoding="utf-8"))
             .substitute(name=name, python=shlex.quote(sys.executable))
             for source, target in FILES}
    folder.mkdir(parents=True)
    written = []
    for file_name, text in texts.items():
        path = folder / file_name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
