"""`flask media ingest FILE --lesson ID`: hand a large file already on the server to the pipeline.
`flask media sweep [--older-than HOURS] [--delete]`: list (or remove) files no row refers to."""

import shutil
import tempfile
import time
from pathlib import Path

import click
from flask.cli import with_appcontext
from tqdm import tqdm

from school import db
from school.courses.models import Lesson
from school.formatting import human_size
from school.media import service, sweep

media_cli = click.Group("media", help="Lesson media.")


@media_cli.command("ingest")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--lesson", "lesson_id", type=int, required=True, help="Lesson id")
@click.option("--move", is_flag=True, help="Move the file instead of copying it.")
@with_appcontext
def ingest(file: Path, lesson_id: int, move: bool) -> None:
    """Store FILE as the new media of a lesson and queue its transcode (the worker runs it)."""
    lesson = db.session.get(Lesson, lesson_id)
    if lesson is None:
        raise click.ClickException(f"no lesson {lesson_id}")
    service.check_file("video", file.name, file.stat().st_size)
    if move:
        source = file
    else:
        source = Path(tempfile.mkdtemp()) / "ingest"
        shutil.copyfile(file, source)
    asset = service.add_media(lesson, source, file.name, None)
    db.session.commit()
    click.echo(
        f"media {asset.id} stored; transcode job {asset.job_id} queued "
        f"(follow it with `flask --app app jobs list`)"
    )


@media_cli.command("sweep")
@click.option(
    "--older-than",
    "older_than",
    type=click.IntRange(min=1),
    default=24,
    show_default=True,
    metavar="HOURS",
    help="Only files unchanged for this long (a younger file may be waiting for its row).",
)
@click.option("--delete", is_flag=True, help="Remove the orphan files (without it they are only listed).")
@with_appcontext
def sweep_command(older_than: int, delete: bool) -> None:
    """List files under MEDIA_DIR that no database row refers to; remove them with --delete."""
    now = time.time()
    with tqdm(desc="walking MEDIA_DIR", unit="file", leave=False) as bar:
        orphans = sweep.find_orphans(older_than, now, on_file=bar.update)
    if delete:
        orphans = sweep.delete_orphans(orphans, older_than, now)
    for orphan in orphans:
        click.echo(f"{'removed ' if delete else ''}{orphan.path}  {human_size(orphan.size)}")
    total = f"{len(orphans)} orphan files, {sum(o.size for o in orphans) / 1024 / 1024:.1f} MB"
    click.echo(f"removed {total}" if delete else f"{total}; run with --delete to remove them")
