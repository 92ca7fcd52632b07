"""The Alembic migrations build exactly the schema the models describe, on this backend."""

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from school import db
from school.system.cli import alembic_config
from tests.conftest import DATABASE_URL


def test_migrations_build_the_models_schema(app, tmp_path):
    if DATABASE_URL.startswith("postgresql"):
        engine = db.make_engine(DATABASE_URL)
        url = DATABASE_URL
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA IF EXISTS migration_check CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA migration_check"))
        engine.dispose()
        engine = sa.create_engine(
            db.engine_url(url), connect_args={"options": "-csearch_path=migration_check"}
        )
    else:
        engine = db.make_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    with app.app_context():
        config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.Base.metadata)
    engine.dispose()
    assert diff == []
