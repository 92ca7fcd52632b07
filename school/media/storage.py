"""Where files live under MEDIA_DIR: generated names only, writes that appear whole or not at all."""

import errno
import os
import secrets
import shutil
import socket
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
    # A rename keeps the source's old mtime; the orphan sweep's grace period counts from arrival.
    os.utime(tmp)
    os.replace(tmp, target)
    return target


def remove(relative: str | None) -> None:
    """Delete a stored file if it is there."""
    if relative:
        absolute(relative).unlink(missing_ok=True)


def is_disk_full(error: BaseException) -> bool:
    """Whether an error means the disk (or the user's quota) is full."""
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


def _owner() -> str:
    # Host and pid in a work folder's name tell a later worker whether its owner is still alive.
    return f"{socket.gethostname().replace('-', '_')}-{os.getpid()}"


def work_dir(label: str) -> Path:
    """A fresh, empty folder for one job's temporary files."""
    path = root() / "work" / f"{label}-{_owner()}-{secrets.token_hex(6)}"
    path.mkdir(parents=True)
    return path


def clean_work_dirs() -> list[str]:
    """Delete work folders left by dead processes of this host (a worker killed mid-transcode
    never runs its cleanup); returns their names. Folders of live processes, or of other hosts
    sharing MEDIA_DIR, are left alone."""
    from school.jobs.service import pid_alive

    host = socket.gethostname().replace("-", "_")
    removed = []
    folder = root() / "work"
    for path in folder.iterdir() if folder.is_dir() else ():
        parts = path.name.split("-")
        owner_host, pid = (parts[-3], parts[-2]) if len(parts) >= 3 else ("", "")
        if owner_host == host and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed
