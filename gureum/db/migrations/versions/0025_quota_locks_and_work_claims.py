"""quota locks and work claims

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-01 03:35:00

A row per project that quota checks lock before counting (exact quotas on
PostgreSQL and MariaDB), and the leases conductors take on long work (a volume
copy runs on one conductor at a time; another takes it over when the lease
expires). See gureum/db/locks.py.
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('quota_locks',
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('project_id', name=op.f('pk_quota_locks'))
    )
    op.create_table('work_claims',
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('ident', sa.String(length=64), nullable=False),
    sa.Column('owner', sa.String(length=255), nullable=False),
    sa.Column('expires_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'ident', name=op.f('pk_work_claims'))
    )


def downgrade() -> None:
    op.drop_table('work_claims')
    op.drop_table('quota_locks')
