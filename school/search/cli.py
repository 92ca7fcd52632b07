"""`flask search rebuild` and `flask search query "…" [--json]`."""

import json

import click
from flask.cli import with_appcontext
from tqdm import tqdm

from school.search import service

search_cli = click.Group("search", help="The learning library's search index.")


@search_cli.command("rebuild")
@with_appcontext
def rebuild() -> None:
    """Rebuild the index from the database into a new folder and swap it in atomically.

    Run it where the worker runs (one writer at a time); it waits for the worker's writes.
    """
    with tqdm(desc="indexing courses", unit="course") as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        count = service.rebuild(progress)
    click.echo(f"index rebuilt: {count} documents")


@search_cli.command("query")
@click.argument("text")
@click.option("--json", "as_json", is_flag=True, help="Print the hits as JSON.")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 100))
@click.option("--as", "login", help="Search as this user (phone or username), plan-only courses included.")
@with_appcontext
def query(text: str, as_json: bool, limit: int, login: str | None) -> None:
    """Search as a member would and print the hits (without --as: what every member may see)."""
    from school.accounts.service import find_by_login

    viewer = find_by_login(login) if login else None
    if login and viewer is None:
        raise click.BadParameter(f"no user {login!r}", param_hint="--as")
    results = service.search(text, per_page=limit, viewer=viewer)
    if results.unavailable:
        raise click.ClickException("the index is missing or broken; a rebuild has been queued")
    rows = [service.hit_json(hit) for hit in results.hits]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "query": results.query,
                    "total": results.total,
                    "partial": results.partial,
                    "suggestion": results.suggestion,
                    "hits": rows,
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    for row in rows:
        where = f" @{row['time']}" if row.get("time") else (f" p{row['page']}" if row.get("page") else "")
        click.echo(
            f"{row['kind']:<9} {row['course_title']} › {row.get('lesson_title') or ''}{where}  {row['text']}"
        )
    click.echo(f"{results.total} hits{' (some words only)' if results.partial else ''}")
    if results.suggestion:
        click.echo(f"did you mean: {results.suggestion}")
