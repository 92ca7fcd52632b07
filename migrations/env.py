"""Alembic environment: the app's models and DATABASE_URL (see `flask --app app db …`)."""

from alembic import context

from school import db
from school.models import load_all

load_all()
config = context.config
url = config.attributes.get("database_url")


def run_migrations_offline() -> None:
    context.configure(
        url=db.engine_url(url), target_metadata=db.Base.metadata, literal_binds=True, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = db.make_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection) -> None:
    # Batch mode lets later migrations alter SQLite tables (copy-and-move) with the same script.
    context.configure(
        connection=connection, target_metadata=db.Base.metadata, render_as_batch=True, compare_type=True
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
