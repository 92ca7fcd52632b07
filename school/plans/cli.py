"""`flask --app app plans …`: study plan commands."""

from datetime import date

import click
from flask.cli import AppGroup

from school import db

plans_cli = AppGroup("plans", help="Study plans.")


@plans_cli.command("remind")
@click.option("--date", "day", default=None, help="Day to act as today (YYYY-MM-DD); default: today.")
def remind(day: str | None) -> None:
    """Send due and overdue study plan reminders (safe to run again)."""
    from school.plans.service import _today, send_plan_reminders

    try:
        today = date.fromisoformat(day) if day else _today()
    except ValueError as error:
        raise click.BadParameter("use YYYY-MM-DD", param_hint="--date") from error
    sent = send_plan_reminders(today)
    db.session.commit()
    click.echo(f"{sent} reminders sent")
