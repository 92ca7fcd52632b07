"""`flask --app app warnings …`: 防瘫预警 commands."""

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import AppGroup

from school import db

warnings_cli = AppGroup("warnings", help="Early warnings (防瘫预警).")


@warnings_cli.command("evaluate")
@click.option("--date", "day", default=None, help="Evaluate as of this day (YYYY-MM-DD); default: now.")
def evaluate_command(day: str | None) -> None:
    """Raise, escalate and resolve warnings now (safe to run again)."""
    from school.warnings.service import evaluate

    try:
        today = date.fromisoformat(day) if day else None
    except ValueError as error:
        raise click.BadParameter("use YYYY-MM-DD", param_hint="--date") from error
    now = None
    if today:  # the end of that local day, so its study counts
        zone = ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])
        now = datetime.combine(today, time(23, 59), zone).astimezone(UTC).replace(tzinfo=None)
    outcome = evaluate(now, today)
    db.session.commit()
    click.echo(str(outcome))
