"""Where files live under MEDIA_DIR: generated names only, writes that appear whole or not at all."""

import os
import secrets
import shutil
from pathlib import Path

from flask import current_app


def root() -> Path:
    """MEDIA_DIR as an absolute path (created when missing)."""
    path = Path(current_app.config["MEDIA_DIR"]).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_name(folder: str, suffix: str = "") -> str:
    """A fresh, unguessable relative path such as "attachments/3f…9a.pdf"."""
    return f"{folder}/{secrets.token_hex(16)}{suffix}"


def absolute(relative: str) -> Path:
    """The absolute path of a stored file; refuses anything that would leave MEDIA_DIR."""
    base = root()
    path = (base / relative).resolve()
    if base not in path.parents:
        raise ValueError(f"path outside MEDIA_DIR: {relative!r}")
    return path


def move_in(source: Path, relative: str) -> Path:
    """Move a finished file to its final name (atomic within one file system)."""
    target = absolute(relative)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    shutil.move(str(source), tmp)
    os.replace(tmp, target)
    return target


def remove(relative: str | None) -> None:
    """Delete a stored file if it is there."""
    if relative:
        absolute(relative).unlink(missing_ok=True)


def work_dir(label: str) -> Path:
    """A fresh, empty folder for one job's temporary files."""
    path = root() / "work" / f"{label}-{secrets.token_hex(6)}"
    path.mkdir(parents=True)
    return path
