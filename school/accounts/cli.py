"""`flask accounts create-admin|token`."""

import click
from flask.cli import with_appcontext

from school import db
from school.accounts import service

accounts_cli = click.Group("accounts", help="User accounts.")


@accounts_cli.command("create-admin")
@click.option("--username", required=True)
@click.option("--name", "display_name", required=True)
@click.option("--phone", default=None)
@click.password_option()
@with_appcontext
def create_admin(username: str, display_name: str, phone: str | None, password: str) -> None:
    """Create an admin account (idempotent: an existing username is left as it is)."""
    if service.find_by_login(username):
        click.echo(f"{username} exists, unchanged")
        return
    service.check_password_rules(password)
    user = service.create_user(
        display_name,
        password,
        username=username,
        phone=phone,
        roles=[("admin", None)],
        must_change_password=False,
    )
    db.session.commit()
    click.echo(f"created admin {user.username} (id {user.id})")


@accounts_cli.command("token")
@click.argument("login")
@click.option("--name", default="script", show_default=True)
@with_appcontext
def token(login: str, name: str) -> None:
    """Create a personal access token for LOGIN and print it once."""
    user = service.find_by_login(login)
    if user is None:
        raise click.ClickException(f"no account {login}")
    _token, raw = service.create_token(user, name)
    db.session.commit()
    click.echo(raw)
