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
