"""Operations commands: database migrations and the doctor."""

import shutil
import sys
from pathlib import Path

import click
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from flask import current_app
from flask.cli import with_appcontext

from school import db, settings
from school.media import binaries

db_cli = click.Group("db", help="Database migrations (Alembic).")


def alembic_config() -> Config:
    """Alembic configuration pointing at migrations/ and the app's DATABASE_URL."""
    config = Config()
    config.set_main_option("script_location", str(settings.ROOT / "migrations"))
    config.attributes["database_url"] = current_app.config["DATABASE_URL"]
    return config


@db_cli.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    command.upgrade(alembic_config(), revision)


@db_cli.command("current")
@with_appcontext
def current() -> None:
    """Show the database's migration revision."""
    command.current(alembic_config(), verbose=False)


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
@with_appcontext
def revision(message: str) -> None:
    """Write a new migration from the difference between models and database."""
    command.revision(alembic_config(), message=message, autogenerate=True)


def _free(path: str) -> str:
    target = Path(path)
    while not target.exists() and target != target.parent:
        target = target.parent
    usage = shutil.disk_usage(target)
    return f"{usage.free / 2**30:.1f} GiB free"


@click.command("doctor")
@with_appcontext
def doctor() -> None:
    """Check ffmpeg, database, queue, index and media folders; exit 1 when something is missing."""
    config = current_app.config
    problems = 0

    def line(ok: bool, name: str, detail: str) -> None:
        nonlocal problems
        problems += 0 if ok else 1
        click.echo(f"[{'ok' if ok else 'FAIL':>4}] {name:<10} {detail}")

    ffmpeg, ffprobe = binaries.paths()
    for name, path in (("ffmpeg", ffmpeg), ("ffprobe", ffprobe)):
        found = binaries.version(path)
        line(bool(found), name, f"{found} ({path})" if found else "not found")

    url = db.engine.url
    try:
        with db.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            head = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        line(
            True,
            "database",
            f"{url.get_backend_name()} {url.render_as_string(hide_password=True)} (migration {head})",
        )
    except Exception as error:
        line(False, "database", f"{url.render_as_string(hide_password=True)}: {error}")

    from school.extensions import huey

    queue = config["QUEUE_URL"]
    try:
        pending = huey.pending_count()
        line(True, "queue", f"{type(huey).__name__} {queue} ({pending} waiting)")
    except Exception as error:
        line(False, "queue", f"{queue}: {error}")

    for name in ("MEDIA_DIR", "INDEX_DIR"):
        path = Path(config[name])
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / ".doctor"
            probe.write_text("ok")
            probe.unlink()
            line(True, name.split("_")[0].lower(), f"{path} ({_free(str(path))})")
        except OSError as error:
            line(False, name.split("_")[0].lower(), f"{path}: {error}")

    sys.exit(1 if problems else 0)


class _Bars:
    """One tqdm bar per step of a backup or restore (database pages, media files, checks)."""

    def __init__(self):
        self.bars: dict = {}

    def __call__(self, step: str, done: int, total: int) -> None:
        from tqdm import tqdm

        bar = self.bars.get(step)
        if bar is None:
            for done_bar in self.bars.values():
                done_bar.close()  # one step at a time: the finished bar stays as it ended
            unit = "page" if step == "database" else "file"
            bar = self.bars[step] = tqdm(desc=step, unit=unit, total=total, leave=True)
        bar.total = total
        bar.n = done
        bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


@click.command("backup")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--link", is_flag=True, help="Hard-link media files instead of copying them (same file system)."
)
@with_appcontext
def backup_command(dest: Path, link: bool) -> None:
    """Back up the database, media files and a manifest into the empty folder DEST (online)."""
    from school.system import backup

    bars = _Bars()
    try:
        manifest = backup.backup(dest, link=link, progress=bars)
    except backup.BackupError as error:
        raise click.ClickException(str(error)) from None
    finally:
        bars.close()
    media = manifest["media"]
    rows = sum(manifest["database"]["tables"].values())
    click.echo(
        f"backup written to {dest}: {manifest['database']['kind']} database ({rows} rows, "
        f"migration {manifest['migration'] or 'none'}), {len(media['files'])} media files "
        f"({media['bytes'] / 2**20:.1f} MiB)"
    )
    for path in media["missing"]:
        click.echo(f"warning: referenced by the database but not in MEDIA_DIR: {path}", err=True)


@click.command("restore")
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite a database or MEDIA_DIR that already holds data.")
@click.option(
    "--verify-only", is_flag=True, help="Only check the backup (checksums, integrity); change nothing."
)
@with_appcontext
def restore_command(src: Path, force: bool, verify_only: bool) -> None:
    """Check the backup SRC and restore it into DATABASE_URL, MEDIA_DIR and the instance folder.

    Stop the site and the worker first. A damaged backup is refused before anything changes.
    """
    from school.system import backup

    bars = _Bars()
    try:
        if verify_only:
            manifest = backup.verify(src, progress=bars)
            bars.close()
            click.echo(f"backup of {manifest['created_at']} is complete and intact")
            return
        summary = backup.restore(src, force=force, progress=bars)
    except backup.BackupError as error:
        raise click.ClickException(str(error)) from None
    finally:
        bars.close()
    click.echo(
        f"restored the backup of {summary['created_at']}: {summary['rows']} rows, "
        f"{summary['media_files']} media files"
        + (f", migrated to {summary['migrated_to']}" if summary["migrated_to"] else "")
        + f"; search index rebuild queued (job {summary['index_job']}). Restart the site and the worker."
    )
