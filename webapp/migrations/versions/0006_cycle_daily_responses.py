"""cycles: responses per day kept at release, when responses lose their own day

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 04:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("cycles") as batch:
        batch.add_column(sa.Column("daily_responses", sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table("cycles") as batch:
        batch.drop_column("daily_responses")
