"""outbox: a cancelled status for emails whose links died before they were sent

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 22:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BEFORE = ("pending", "sent", "failed")
_AFTER = (*_BEFORE, "cancelled")


def _status(values):
    return sa.Enum(*values, name="outboxstatus", native_enum=False, create_constraint=True)


def upgrade():
    # The type's CHECK constraint (ck_outbox_outboxstatus) is dropped and made anew.
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column(
            "status", existing_type=_status(_BEFORE), type_=_status(_AFTER), existing_nullable=False
        )


def downgrade():
    # A cancelled email was never sent and never will be: it goes back as failed.
    op.execute(
        "UPDATE outbox SET status = 'failed', last_error = 'cancelled before it was sent'"
        " WHERE status = 'cancelled'"
    )
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column(
            "status", existing_type=_status(_AFTER), type_=_status(_BEFORE), existing_nullable=False
        )
