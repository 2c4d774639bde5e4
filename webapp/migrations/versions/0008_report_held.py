"""participants: a report HR holds back at release until they share it

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 01:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("participants") as batch:
        batch.add_column(
            sa.Column("report_held", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade():
    with op.batch_alter_table("participants") as batch:
        batch.drop_column("report_held")
