"""`flask media ingest FILE --lesson ID`: hand a large file already on the server to the pipeline."""

import shutil
import tempfile
from pathlib import Path

import click
from flask.cli import with_appcontext

from school import db
from school.courses.models import Lesson
from school.media import service

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
