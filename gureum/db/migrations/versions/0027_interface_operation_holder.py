"""interface operation holder

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-01 03:50:00

Which conductor holds an interface operation's lease: a conductor that starts again
takes up its own at once instead of waiting its old lease out.
"""

from alembic import op
import sqlalchemy as sa

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('compute_interface_operations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('held_by', sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('compute_interface_operations', schema=None) as batch_op:
        batch_op.drop_column('held_by')
