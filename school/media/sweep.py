"""Orphan files under MEDIA_DIR: stored files that no database row points at any more.

They come from a worker killed between writing a file and committing its row, an attachment or
media asset deleted without its file, or renditions left behind by a newer transcode. They are
found by walking MEDIA_DIR first and reading the referenced paths after, so a row committed while
the walk runs still protects its file. `flask media sweep` lists them, and removes them when asked.
"""

import contextlib
import os
import posixpath
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG

import sqlalchemy as sa
from flask import current_app

from school import db
from school.courses.models import Course
from school.media import storage
from school.media.models import Attachment, MediaAsset, Rendition, SubtitleTrack

# Every column that stores a MEDIA_DIR-relative path. A file named by any of them is in use and is
# never swept, so a new column that stores a path must be added here (a poster is a Rendition;
# report exports and roster imports live under the instance folder, not MEDIA_DIR).
PATH_COLUMNS = (
    MediaAsset.original_path,  # uploaded audio/video originals
    Rendition.path,  # 360p, high, audio and poster outputs of a transcode
    Attachment.path,  # lesson documents and images
    SubtitleTrack.path,  # WebVTT files
    Course.cover_path,  # course cover images
)
# Top-level folders with their own cleanup: job work folders (storage.clean_work_dirs) and resumable
# uploads still arriving (service.expire_uploads, after UPLOAD_EXPIRY_HOURS).
OWNED_FOLDERS = ("work", "uploads")
# A file being renamed into place (storage.move_in, subtitles) or an upload part.
PARTIAL_SUFFIX = ".part"
BATCH = 1000  # referenced paths read per round trip; paths checked per IN (...) before deleting


@dataclass(frozen=True)
class Orphan:
    path: str  # relative to MEDIA_DIR, with "/"
    size: int


def find_orphans(
    older_than_hours: float, now: float, on_file: Callable[[], None] | None = None
) -> list[Orphan]:
    """Files under MEDIA_DIR older than the grace period that no row refers to, sorted by path.

    `now` is a Unix time (the clock of file modification times); `on_file` is called once per
    file walked (a progress bar)."""
    cutoff = now - older_than_hours * 3600
    candidates: dict[str, int] = {}
    for relative, stat in _walk(storage.root()):
        if on_file is not None:
            on_file()
        # Younger files may be waiting for their row's commit (storage.move_in touches every file
        # it puts in place, so a moved-in old file counts as new).
        if stat.st_mtime < cutoff:
            candidates[relative] = stat.st_size
    for relative in _referenced_paths():
        candidates.pop(relative, None)
    return [Orphan(path, size) for path, size in sorted(candidates.items())]


def delete_orphans(orphans: Iterable[Orphan], older_than_hours: float, now: float) -> list[Orphan]:
    """Delete orphan files, checking each again first (still old, still unreferenced, a plain file
    inside MEDIA_DIR); returns those removed."""
    cutoff = now - older_than_hours * 3600
    orphans = list(orphans)
    referenced = _still_referenced([o.path for o in orphans])
    base = storage.root()
    removed = []
    for orphan in orphans:
        if orphan.path in referenced:
            continue
        path = base / orphan.path
        try:
            # Resolving to itself means no symlink and no ".." on the way: inside MEDIA_DIR.
            if storage.absolute(orphan.path) != path:
                continue
            stat = path.lstat()
        except (ValueError, FileNotFoundError):
            continue
        if not S_ISREG(stat.st_mode) or stat.st_mtime >= cutoff:
            continue
        path.unlink(missing_ok=True)
        removed.append(orphan)
        _remove_empty_run_folder(path.parent)
    return removed


def _walk(base: Path) -> Iterator[tuple[str, os.stat_result]]:
    """(relative path, stat) of each candidate file; symlinks, hidden names, partial files and
    folders owned by other cleanups are skipped."""
    skipped = {base / name for name in OWNED_FOLDERS} | _foreign_folders(base)
    stack = [base]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:  # removed while we walk (a failed transcode cleans its folder)
            continue
        for entry in entries:
            # A symlink may point out of MEDIA_DIR: never followed, never deleted.
            if entry.name.startswith(".") or entry.is_symlink():
                continue
            path = Path(entry.path)
            try:
                if entry.is_dir(follow_symlinks=False):
                    if path not in skipped:
                        stack.append(path)
                elif entry.is_file(follow_symlinks=False) and not entry.name.endswith(PARTIAL_SUFFIX):
                    yield path.relative_to(base).as_posix(), entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue


def _foreign_folders(base: Path) -> set[Path]:
    # Other state configured to live inside MEDIA_DIR (the search index, the instance folder with
    # report exports) holds files no media row names: never treat them as orphans.
    folders = set()
    for setting in (current_app.config.get("INDEX_DIR"), current_app.instance_path):
        if setting:
            path = Path(setting).resolve()
            if base in path.parents:
                folders.add(path)
    return folders


def _normal(relative: str) -> str:
    # storage.absolute() resolves "a//b" or "a/./b" to the same file, so compare normalised paths.
    return posixpath.normpath(relative)


def _referenced_paths() -> Iterator[str]:
    """Every path the database refers to, streamed in batches (a large library is not loaded into
    memory at once)."""
    for column in PATH_COLUMNS:
        stmt = sa.select(column).where(column.is_not(None)).execution_options(yield_per=BATCH)
        for relative in db.session.scalars(stmt):
            if relative:
                yield _normal(relative)
    db.session.commit()  # end the read (SQLite must not keep a snapshot open while we delete)


def _still_referenced(paths: list[str]) -> set[str]:
    """Those of `paths` some row refers to now (rows may have arrived since the walk)."""
    found: set[str] = set()
    for start in range(0, len(paths), BATCH):
        chunk = paths[start : start + BATCH]
        for column in PATH_COLUMNS:
            found.update(db.session.scalars(sa.select(column).where(column.in_(chunk))))
    db.session.commit()
    return found


def _remove_empty_run_folder(folder: Path) -> None:
    # A transcode run writes into its own fresh folder (renditions/<asset>/<token>/), so once empty
    # it can go; shallower folders stay, as a running job may be about to write into them.
    base = storage.root()
    if len(folder.relative_to(base).parts) >= 3:
        with contextlib.suppress(OSError):  # not empty, or already gone
            folder.rmdir()
