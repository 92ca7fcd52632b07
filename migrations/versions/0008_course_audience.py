"""Course audience: a published course open to every member, or only to those a study plan names it to.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 17:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("course", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audience", sa.String(length=16), server_default="all", nullable=False))
        batch_op.create_check_constraint("audience", "audience IN ('all', 'plan')")


def downgrade():
    with op.batch_alter_table("course", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_course_audience"), type_="check")
        batch_op.drop_column("audience")
