"""`flask content load DIR`."""

from pathlib import Path

import click
from flask.cli import with_appcontext
from tqdm import tqdm

from school import db
from school.content import service
from school.content.courses import course_folders, load_courses
from school.content.plans import load_plans
from school.credits.service import local_now
from school.errors import Invalid


def _rows(folder: Path) -> int:
    total = 0
    if (folder / "members.csv").exists():
        total += max(0, service.read_text(folder / "members.csv").count("\n") - 1)
    for name in ("orgs.yaml", "people.yaml"):
        if (folder / name).exists():
            total += service.read_text(folder / name).count("code:" if name == "orgs.yaml" else "name:")
    return total


content_cli = click.Group("content", help="Course and demo content kept as data.")


@content_cli.command("load")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@with_appcontext
def load(folder: Path) -> None:
    """Load a content folder (idempotent: loading it twice changes nothing the second time)."""
    with tqdm(total=_rows(folder), desc=f"loading {folder}", unit="row", leave=False) as bar:
        try:
            summary = service.load_folder(folder, tick=lambda _s: bar.update())
        except Invalid as error:
            db.session.rollback()
            raise click.ClickException(f"nothing was loaded:\n{error.message}") from None
    db.session.commit()
    folders = course_folders(folder)
    if folders:
        lessons = sum(
            text.count("- code:") for text in (service.read_text(f / "course.yaml") for f in folders)
        )
        with tqdm(total=lessons, desc="courses (transcoding demo media)", unit="lesson") as bar:
            try:
                course_summary = load_courses(folder, tick=lambda _s: bar.update())
            except Invalid as error:
                raise click.ClickException(f"courses stopped:\n{error.message}") from None
        summary.counts.update(course_summary.counts)
    try:  # plans name courses, so they come last
        summary.counts.update(load_plans(folder, local_now().date()).counts)
    except Invalid as error:
        db.session.rollback()
        raise click.ClickException(f"plans were not loaded:\n{error.message}") from None
    db.session.commit()
    for source in ("orgs", "people", "courses", "lessons", "questions", "plans"):
        counts = {k: summary.counts[(source, k)] for k in ("created", "updated", "unchanged")}
        if source in ("orgs", "people") or any(counts.values()):
            click.echo(f"{source}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
