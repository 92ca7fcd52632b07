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


@content_cli.command("generate-city")
@click.option("--members", default=100_000, show_default=True, help="Members to generate.")
@click.option("--lessons", default=50, show_default=True, help="Published lessons (about ten per course).")
@click.option("--districts", default=16, show_default=True)
@click.option("--streets", default=10, show_default=True, help="Streets per district.")
@click.option("--branches", default=13, show_default=True, help="Branches per street.")
@click.option("--seed", default=6, show_default=True, help="Random seed (the same seed, the same city).")
@with_appcontext
def generate_city(members: int, lessons: int, districts: int, streets: int, branches: int, seed: int) -> None:
    """Generate a city for demos and benchmarks: orgs, members, courses, a plan, study (refuses twice)."""
    import time

    from school.content import generate
    from school.errors import Conflict

    if min(members, lessons, districts, streets, branches) < 1:
        raise click.ClickException("every count must be at least 1")
    if generate.exists():
        raise click.ClickException(
            "a generated city is already in this database (org code gen-city); nothing was changed"
        )
    bars: dict[str, tqdm] = {}
    totals = {"orgs": 1 + districts * (1 + streets * (1 + branches)), "members": members, "roles": None}

    def tick(what: str, n: int) -> None:
        if what not in bars:
            for bar in bars.values():
                bar.close()
            bars.clear()
            bars[what] = tqdm(total=totals.get(what), desc=what, unit="row")
        bars[what].update(n)

    started = time.perf_counter()
    try:
        city = generate.build_city(members, lessons, districts, streets, branches, seed, tick=tick)
    except Conflict as error:
        db.session.rollback()
        raise click.ClickException(error.message) from None
    finally:
        for bar in bars.values():
            bar.close()
    click.echo(
        ", ".join(f"{n:,} {what}" for what, n in city.counts.items())
        + f" in {time.perf_counter() - started:.1f} s"
    )
    click.echo(
        f"plan {city.plan_id}; sign in as {generate.CODE}organizer-city (or -d1 … -d{districts}) "
        f"with password {city.password} (shown only now)"
    )
