"""cycles: a release HR started in the console, carried out by a background job

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 19:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("cycles") as batch:
        batch.add_column(sa.Column("release_started_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("release_error", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("cycles") as batch:
        batch.drop_column("release_error")
        batch.drop_column("release_started_at")
