"""Wheels and pythons for tests of the plugin's environment, made offline in a moment.

A test that needs two versions of one package builds them here: a tiny
pure-Python package whose ``VERSION`` says which it is, written as a wheel
by hand (a wheel is a zip with its dist-info), so no build backend and no
network is needed.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def tiny_wheel(folder: Path, name: str, version: str) -> Path:
    """Write ``<name>-<version>-py3-none-any.whl`` into ``folder``: module ``name`` holding
    ``VERSION = '<version>'``."""
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
                         "Tag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def with_wheels(zip_path: Path, *folders: Path) -> Path:
    """Add the wheels of ``folders`` to a plugin zip under ``wheels/``, as
    ``package --wheels`` bundles them; returns ``zip_path``."""
    with zipfile.ZipFile(zip_path, "a") as archive:
        for folder in folders:
            for wheel in sorted(folder.glob("*.whl")):
                archive.write(wheel, f"wheels/{wheel.name}")
    return zip_path
