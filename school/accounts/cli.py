"""`flask accounts create-admin|token|reset-two-factor`."""

import click
from flask.cli import with_appcontext

from school import db
from school.accounts import service, two_factor
from school.audit import service as audit

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
    audit.record("role.grant", org_id=None, target=user, details={"role": "admin", "source": "cli"})
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


@accounts_cli.command("reset-two-factor")
@click.argument("login")
@with_appcontext
def reset_two_factor(login: str) -> None:
    """Turn off LOGIN's two-factor sign-in (lost phone, or an admin outside every branch)."""
    user = service.find_by_login(login)
    if user is None:
        raise click.ClickException(f"no account {login}")
    changed = two_factor.reset(user, None)
    db.session.commit()
    click.echo(f"{login}: two-factor reset, sessions ended" if changed else f"{login}: none, unchanged")
