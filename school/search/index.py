"""The Whoosh index on disk: schema, opening, and atomic rebuilds.

INDEX_DIR/current is a symlink to the live generation folder; a rebuild writes a new folder and
swaps the link in one rename, so readers never see a half-built index. Only the worker writes
(Whoosh allows one writer); its lock is an flock, which the kernel drops when a process dies, so
a crashed writer leaves no stale lock behind.
"""

import fcntl
import os
import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from flask import current_app
from whoosh import index as whoosh_index
from whoosh.fields import DATETIME, ID, KEYWORD, NUMERIC, STORED, TEXT, Schema

from school.search.analysis import chinese_analyzer, gram_analyzer

# Bump when schema() or the analyzers change: an index of another version is treated as missing
# (the site says search is being rebuilt and queues the rebuild) instead of silently finding less.
SCHEMA_VERSION = "5"
VERSION_FILE = "school-schema-version"

_write_lock = threading.Lock()  # worker threads of one process take turns; the flock does the rest


def schema() -> Schema:
    # We never build phrase queries: jieba's overlapping search-mode tokens make them unreliable.
    # `text` keeps each word's character offsets (positions come with them) so snippets are cut
    # from the index instead of running jieba over every hit's text again (FIELD-NOTES: that was
    # most of a query's time).
    zh = chinese_analyzer()
    return Schema(
        key=ID(unique=True, stored=True),  # "lesson:12", "cue:55", "page:3:1", "course:4"
        kind=ID(stored=True),  # course | lesson | subtitle | document
        played=ID(),  # "yes" on a lesson with a video or audio and on its subtitle cues (type=video)
        course=ID(stored=True),
        lesson=ID(stored=True),
        title=TEXT(analyzer=zh, phrase=False, stored=True, field_boost=3.0),
        # Everything searchable of the document in one field (its text first, then titles and
        # course tags), so a word costs two postings lookups (title, text). `body` is kept for
        # snippets: it is the start of `text`, so the offsets in `text` point into it.
        text=TEXT(analyzer=zh, chars=True),
        body=STORED,
        grams=TEXT(analyzer=gram_analyzer(), phrase=False, field_boost=0.3),
        pinyin=KEYWORD(lowercase=True, scorable=True),  # of course and lesson titles: sanhuiyike shyk
        start_ms=NUMERIC(stored=True),
        page=NUMERIC(stored=True),
        attachment=STORED,
        updated=DATETIME(stored=True),
    )


def folder() -> Path:
    path = Path(current_app.config["INDEX_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def current_path() -> Path:
    return folder() / "current"


def exists() -> bool:
    """Whether a readable index of this code's schema version is in place."""
    path = current_path()
    try:
        version = (path / VERSION_FILE).read_text().strip()
    except OSError:
        return False
    return version == SCHEMA_VERSION and whoosh_index.exists_in(str(path))


def open_index():
    """The live index (raises when it is missing or broken)."""
    return whoosh_index.open_dir(str(current_path()))


_reader_lock = threading.Lock()
_reader: dict = {"target": None, "searcher": None}


def searcher():
    """A searcher on the live index, kept open between requests and refreshed when the worker
    has committed (or a rebuild swapped generations); raises when the index is missing or of
    another schema version."""
    if not exists():
        raise FileNotFoundError("no index of this schema version")
    target = os.readlink(current_path())
    with _reader_lock:
        cached = _reader["searcher"]
        if cached is None or _reader["target"] != target:
            if cached is not None:
                cached.close()
            _reader["searcher"] = open_index().searcher()
            _reader["target"] = target
        elif not cached.up_to_date():
            _reader["searcher"] = cached.refresh()
        return _reader["searcher"]


def new_generation() -> tuple[Path, object]:
    """A fresh, empty index folder (for a rebuild)."""
    path = folder() / f"gen-{int(time.time() * 1000)}-{os.getpid()}"
    path.mkdir()
    (path / VERSION_FILE).write_text(SCHEMA_VERSION)
    return path, whoosh_index.create_in(str(path), schema())


def publish(path: Path) -> None:
    """Make a fully written generation the live one, atomically, and remove older ones."""
    link = current_path()
    if link.is_dir() and not link.is_symlink():
        # `current` copied back as a real folder (a restore, a hand copy): a link cannot replace
        # a folder, so set it aside with the old generations, to be removed below.
        os.rename(link, folder() / f"gen-0-replaced-{os.getpid()}")
    tmp = folder() / f".current-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(path.name)
    os.replace(tmp, link)
    for old in folder().glob("gen-*"):
        if old.name != path.name:
            shutil.rmtree(old, ignore_errors=True)


def writer(ix):
    """A writer that waits for the lock instead of failing at once."""
    return ix.writer(timeout=60.0)


@contextmanager
def write_lock():
    """Held by whoever writes the index, in any process: worker threads take turns on the thread
    lock, and a `flask search rebuild` in another process waits on the flock for the worker's
    write to end (and the worker for the rebuild), so no course update goes into a generation that
    a rebuild is about to replace. The kernel drops a flock when its process dies."""
    with _write_lock, open(folder() / ".write.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
