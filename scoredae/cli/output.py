"""Output paths of the commands: checked before any work, refused in words."""

from __future__ import annotations

import os
from pathlib import Path


def writable_output(path: str, suffixes: tuple[str, ...] | None = None, option: str = "--out") -> Path:
    """``path`` as a file Path whose folder exists (created when missing) and is writable, ending in
    one of ``suffixes`` (any when None); otherwise a ValueError that says what is in the way."""
    out = Path(path)
    if suffixes is not None and out.suffix not in suffixes:
        raise ValueError(f"{option}: expected a path ending in {', '.join(suffixes)}, got {path!r}")
    if out.is_dir():
        raise ValueError(f"{option}: {out} is a folder; give a file name inside it")
    writable_folder(str(out.parent), option)
    return out


def writable_folder(path: str, option: str = "--out") -> Path:
    """``path`` as a folder that exists (created when missing) and is writable; otherwise a
    ValueError that says which part of the path is in the way."""
    out = Path(path)
    blocking = next((p for p in [*reversed(out.parents), out] if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise ValueError(f"{option}: {blocking} is a file, so no folder {out} can be made there")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"{option}: the folder {out} cannot be made ({err.strerror.lower()})") from err
    if not os.access(out, os.W_OK):
        raise ValueError(f"{option}: the folder {out} is not writable")
    return out
