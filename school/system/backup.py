"""Backups and restores of the whole site: database, media files and a manifest that proves them.

A backup folder holds `manifest.json` (written last: a folder without it is not a backup), the
database (`database.sqlite3`, or `database.dump` from pg_dump for PostgreSQL), `media/` and,
when the key was generated into the instance folder, `secret_key`.

- The database snapshot comes first and is consistent while the site keeps writing: SQLite's
  online backup API copies pages under one read transaction (WAL lets writers go on, and the copy
  never restarts); PostgreSQL exports a snapshot that pg_dump and our own counts share.
- Media files are copied after the snapshot, so a file added since is a harmless extra, while a
  file the snapshot references must be in the backup: one that is not is listed as missing.
- Not in a backup: the Whoosh index (a restore queues a rebuild from the database, as it may not
  be copied while the worker writes), the Huey queue (the job table is the truth, and the worker's
  start-up sweep sends every queued job again), partial uploads, job work folders and report
  exports (they expire within a day).
"""

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import sqlalchemy as sa
from flask import current_app

from school import db

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite3"
DUMP_FILE = "database.dump"
KEY_FILE = "secret_key"
# Folders and suffixes under MEDIA_DIR that are not content: resumable uploads still arriving,
# ffmpeg's work folders, files being renamed into place.
SKIP_FOLDERS = {"uploads", "work"}
SKIP_SUFFIXES = (".part",)
PAGES_PER_STEP = 256  # SQLite pages (4 KiB) copied per step of the online backup: 1 MiB
CHUNK = 1024 * 1024

Progress = Callable[[str, int, int], None]  # (step name, done, total)


class BackupError(Exception):
    """A backup that cannot be taken, or a backup folder that must not be restored."""


def _quiet(_step: str, _done: int, _total: int) -> None:
    pass


# --- what is in the database ---------------------------------------------------------------------


def referenced_files(conn: sa.Connection) -> set[str]:
    """Every MEDIA_DIR path the database refers to (originals, renditions, documents, subtitles,
    covers)."""
    from school.media.sweep import PATH_COLUMNS

    paths: set[str] = set()
    for column in PATH_COLUMNS:
        paths.update(p for p in conn.scalars(sa.select(column).where(column.is_not(None))) if p)
    return paths


def table_counts(conn: sa.Connection) -> dict[str, int]:
    """Rows per table of the models (the tables a restore must bring back)."""
    existing = set(sa.inspect(conn).get_table_names())
    return {
        table.name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        for table in db.Base.metadata.sorted_tables
        if table.name in existing
    }


def migration_revision(conn: sa.Connection) -> str | None:
    """The Alembic revision of a database (None when it was made without migrations)."""
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _scripts():
    from alembic.script import ScriptDirectory

    from school.system.cli import alembic_config

    return ScriptDirectory.from_config(alembic_config())


def code_head() -> str | None:
    """The newest migration this code knows."""
    return _scripts().get_current_head()


# --- files -------------------------------------------------------------------------------------


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _entry(folder: Path, relative: str) -> dict:
    path = folder / relative
    return {"path": relative, "size": path.stat().st_size, "sha256": sha256(path)}


def media_files(root: Path) -> list[str]:
    """Content files under MEDIA_DIR, relative, sorted (no partial uploads or work folders)."""
    if not root.is_dir():
        return []
    found = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        if here == root:
            dirs[:] = [d for d in dirs if d not in SKIP_FOLDERS]
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.startswith(".") or name.endswith(SKIP_SUFFIXES):
                continue
            found.append((here / name).relative_to(root).as_posix())
    return sorted(found)


def _copy(source: Path, target: Path, link: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(source, target)
            return
        except OSError:
            pass  # another file system: copy instead
    tmp = target.with_name(target.name + ".part")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def _is_empty_folder(path: Path) -> bool:
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


# --- database snapshots --------------------------------------------------------------------------


def _sqlite_path(url: sa.URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("内存数据库无法备份 / an in-memory database cannot be backed up")
    return Path(url.database)


def _sqlite_copy(source: Path, target: Path, progress: Progress, after_snapshot) -> None:
    """Copy a live SQLite database page by page under one read transaction: a consistent snapshot
    (WAL lets writers go on meanwhile, and the copy never restarts because of them)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, isolation_level=None, timeout=30)
    dst = sqlite3.connect(target, isolation_level=None)
    fired = False

    def step(_status: int, remaining: int, total: int) -> None:
        nonlocal fired
        progress("database", total - remaining, total)
        if not fired and after_snapshot is not None:
            fired = True
            after_snapshot()

    try:
        src.execute("BEGIN")
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot starts here
        src.backup(dst, pages=PAGES_PER_STEP, progress=step)
        src.execute("COMMIT")
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        check = dst.execute("PRAGMA integrity_check").fetchall()
    finally:
        src.close()
        dst.close()
    if check != [("ok",)]:
        raise BackupError(f"备份副本完整性检查失败 / integrity check of the copy failed: {check[:5]}")


def _snapshot_facts(url: str) -> tuple[dict[str, int], set[str], str | None]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return table_counts(conn), referenced_files(conn), migration_revision(conn)
    finally:
        engine.dispose()


def _pg_args(url: sa.URL) -> tuple[list[str], dict]:
    """pg_dump/pg_restore connection arguments, with the password in the environment, not argv."""
    args = ["--dbname", url.database or ""]
    for flag, value in (("--host", url.host), ("--port", url.port), ("--username", url.username)):
        if value:
            args += [flag, str(value)]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return args, env


def _pg_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"找不到 {name}：请安装 PostgreSQL 客户端（如 apt install postgresql-client）/ "
            f"{name} is not on PATH: install the PostgreSQL client tools"
        )
    return path


def _pg_dump(target: Path, after_snapshot) -> tuple[dict[str, int], set[str], str | None]:
    """pg_dump --format=custom of an exported snapshot; counts and file references come from the
    same snapshot, so they describe exactly what the dump holds."""
    tool = _pg_tool("pg_dump")
    with db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            snapshot = conn.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
            counts, refs, revision = table_counts(conn), referenced_files(conn), migration_revision(conn)
            if after_snapshot is not None:
                after_snapshot()
            args, env = _pg_args(db.engine.url)
            done = subprocess.run(  # noqa: S603 # nosec B603 # our arguments, no shell
                [
                    tool,
                    "--format=custom",
                    "--no-owner",
                    f"--snapshot={snapshot}",
                    "--file",
                    str(target),
                    *args,
                ],
                env=env,
                capture_output=True,
                text=True,
            )
    if done.returncode != 0:
        raise BackupError(f"pg_dump 失败 / pg_dump failed: {done.stderr.strip()[:500]}")
    return counts, refs, revision


# --- backup --------------------------------------------------------------------------------------


def backup(
    dest: Path, link: bool = False, progress: Progress = _quiet, after_snapshot: Callable | None = None
) -> dict:
    """Write a backup of the configured database and MEDIA_DIR into the empty folder `dest`;
    returns the manifest. `after_snapshot` is called once the database snapshot is fixed while
    the copy is under way (tests write meanwhile)."""
    config = current_app.config
    dest = Path(dest)
    if not _is_empty_folder(dest):
        raise BackupError(f"目标文件夹不是空的 / the backup folder is not empty: {dest}")
    dest.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    url = db.engine.url
    kind = url.get_backend_name()

    if kind == "sqlite":
        copy = dest / SQLITE_FILE
        _sqlite_copy(_sqlite_path(url), copy, progress, after_snapshot)
        counts, refs, revision = _snapshot_facts(f"sqlite:///{copy}")
        database = {"kind": "sqlite", **_entry(dest, SQLITE_FILE)}
    elif kind == "postgresql":
        progress("database", 0, 1)
        counts, refs, revision = _pg_dump(dest / DUMP_FILE, after_snapshot)
        progress("database", 1, 1)
        database = {"kind": "postgresql", "tool": "pg_dump --format=custom", **_entry(dest, DUMP_FILE)}
    else:
        raise BackupError(f"不支持的数据库 / unsupported database: {kind}")
    database["tables"] = counts

    media_root = Path(config["MEDIA_DIR"]).resolve()
    names = media_files(media_root)
    files = []
    for done, name in enumerate(names, 1):
        _copy(media_root / name, dest / "media" / name, link)
        files.append(_entry(dest / "media", name))
        progress("media", done, len(names))
    missing = sorted(refs - set(names))

    key_file = Path(current_app.instance_path) / KEY_FILE
    has_key = key_file.is_file() and key_file.read_text().strip() == config["SECRET_KEY"]
    if has_key:
        shutil.copyfile(key_file, dest / KEY_FILE)
        os.chmod(dest / KEY_FILE, 0o600)

    manifest = {
        "format": FORMAT,
        "app": "school",
        "created_at": started.isoformat(timespec="seconds"),
        "migration": revision,
        "code_head": code_head(),
        "database": database,
        "media": {"files": files, "bytes": sum(f["size"] for f in files), "missing": missing},
        "secret_key": _entry(dest, KEY_FILE) if has_key else None,
        "index": "not included: the restore rebuilds it from the database (search rebuild)",
        "queue": "not included: the job table is the truth; the worker's start sends queued jobs again",
    }
    tmp = dest / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=1))
    os.replace(tmp, dest / MANIFEST)
    return manifest


# --- restore -------------------------------------------------------------------------------------


def read_manifest(src: Path) -> dict:
    """The manifest of a backup folder, or BackupError saying why it is not one."""
    try:
        manifest = json.loads((Path(src) / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(
            f"不是完整的备份（缺少 {MANIFEST}）/ not a complete backup: no {MANIFEST} in {src}"
        ) from None
    except (OSError, ValueError) as error:
        raise BackupError(f"{MANIFEST} 无法读取 / cannot be read: {error}") from None
    if manifest.get("format") != FORMAT or manifest.get("app") != "school":
        raise BackupError(f"未知的备份格式 / unknown backup format in {src}")
    return manifest


def _check_file(folder: Path, entry: dict, shown: str) -> None:
    relative = PurePosixPath(entry["path"])
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        # A crafted manifest must not make the restore write outside MEDIA_DIR.
        raise BackupError(f"备份清单中的路径无效 / invalid path in the manifest: {shown}")
    path = folder / entry["path"]
    if not path.is_file():
        raise BackupError(f"备份已损坏：缺少文件 {shown} / backup is damaged: {shown} is missing")
    if path.stat().st_size != entry["size"] or sha256(path) != entry["sha256"]:
        raise BackupError(
            f"备份已损坏：{shown} 的校验和不符 / backup is damaged: checksum mismatch in {shown}"
        )


def verify(src: Path, progress: Progress = _quiet) -> dict:
    """Check a backup folder completely before anything is touched: every file's size and
    sha256, SQLite's integrity check, and a migration this code knows. Returns the manifest."""
    src = Path(src)
    manifest = read_manifest(src)
    database = manifest["database"]
    _check_file(src, database, database["path"])
    if database["kind"] == "sqlite":
        conn = sqlite3.connect(f"file:{src / database['path']}?mode=ro", uri=True)
        try:
            check = conn.execute("PRAGMA integrity_check").fetchall()
        except sqlite3.DatabaseError as error:
            check = [(str(error),)]
        finally:
            conn.close()
        if check != [("ok",)]:
            raise BackupError(
                f"备份数据库完整性检查失败 / the backup's database fails its integrity check: {check[:3]}"
            )
    if manifest.get("secret_key"):
        _check_file(src, manifest["secret_key"], KEY_FILE)
    files = manifest["media"]["files"]
    for done, entry in enumerate(files, 1):
        _check_file(src / "media", entry, f"media/{entry['path']}")
        progress("verify", done, len(files))
    revision = manifest.get("migration")
    if revision is not None:
        from alembic.util import CommandError

        try:
            known = _scripts().get_revision(revision)
        except CommandError:
            known = None
        if known is None:
            raise BackupError(
                f"备份来自更新的版本（迁移 {revision}），请先升级程序 / "
                f"the backup comes from newer code (migration {revision}): upgrade the code first"
            )
    return manifest


def target_is_empty() -> bool:
    """Whether the configured database has no rows and MEDIA_DIR no content files."""
    with db.engine.connect() as conn:
        counts = table_counts(conn)
    return not any(counts.values()) and not media_files(Path(current_app.config["MEDIA_DIR"]))


def _restore_sqlite(backup_file: Path, progress: Progress) -> None:
    target = _sqlite_path(db.engine.url)
    db.session.remove()
    db.engine.dispose()
    # The backup API writes into the live file under SQLite's locks (WAL included): safer than
    # replacing the file under an open connection.
    src = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)
    dst = sqlite3.connect(target, isolation_level=None, timeout=30)
    try:
        src.backup(
            dst,
            pages=PAGES_PER_STEP,
            progress=lambda _s, left, total: progress("database", total - left, total),
        )
        check = dst.execute("PRAGMA integrity_check").fetchall()
    finally:
        src.close()
        dst.close()
    if check != [("ok",)]:
        raise BackupError(
            f"恢复后的数据库完整性检查失败 / restored database fails its integrity check: {check[:3]}"
        )


def _restore_postgresql(dump: Path) -> None:
    tool = _pg_tool("pg_restore")
    db.session.remove()
    db.engine.dispose()
    args, env = _pg_args(db.engine.url)
    done = subprocess.run(  # noqa: S603 # nosec B603 # our arguments, no shell
        [
            tool,
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            *args,
            str(dump),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_restore 失败 / pg_restore failed: {done.stderr.strip()[:500]}")


def restore(src: Path, force: bool = False, progress: Progress = _quiet) -> dict:
    """Restore a verified backup into the configured database, MEDIA_DIR and instance folder, bring
    the schema up to this code's migrations and queue an index rebuild. Refuses a target that
    holds data unless `force`. Returns a summary."""
    src = Path(src)
    manifest = verify(src, progress)
    database = manifest["database"]
    kind = db.engine.url.get_backend_name()
    if database["kind"] != kind:
        raise BackupError(
            f"备份是 {database['kind']} 数据库，当前配置是 {kind} / "
            f"the backup holds a {database['kind']} database, DATABASE_URL is {kind}"
        )
    if not force and not target_is_empty():
        raise BackupError(
            "目标数据库或媒体文件夹已有数据；确认覆盖请加 --force / "
            "the target database or MEDIA_DIR holds data: add --force to overwrite it"
        )

    if kind == "sqlite":
        _restore_sqlite(src / database["path"], progress)
    else:
        _restore_postgresql(src / database["path"])

    media_root = Path(current_app.config["MEDIA_DIR"]).resolve()
    files = manifest["media"]["files"]
    for done, entry in enumerate(files, 1):
        target = media_root / entry["path"]
        if not (
            target.is_file() and target.stat().st_size == entry["size"] and sha256(target) == entry["sha256"]
        ):
            _copy(src / "media" / entry["path"], target, link=False)
        progress("media", done, len(files))

    if manifest.get("secret_key"):
        key = Path(current_app.instance_path) / KEY_FILE
        tmp = key.with_name(".secret_key.tmp")
        shutil.copyfile(src / KEY_FILE, tmp)
        os.chmod(tmp, 0o600)
        os.replace(tmp, key)

    migrated = None
    if manifest.get("migration") and manifest["migration"] != code_head():
        from alembic import command

        from school.system.cli import alembic_config

        command.upgrade(alembic_config(), "head")
        migrated = code_head()

    with db.engine.connect() as conn:
        counts = table_counts(conn)
    short = {
        t: (n, counts.get(t))
        for t, n in database["tables"].items()
        if counts.get(t) != n and migrated is None
    }
    if short:
        raise BackupError(f"恢复后行数不符 / row counts differ after the restore: {short}")

    from school.jobs import service as jobs

    job = jobs.enqueue("search.rebuild")
    db.session.commit()
    return {
        "created_at": manifest["created_at"],
        "database": kind,
        "rows": sum(counts.values()),
        "media_files": len(files),
        "migrated_to": migrated,
        "index_job": job.id,
        "secret_key": bool(manifest.get("secret_key")),
    }
