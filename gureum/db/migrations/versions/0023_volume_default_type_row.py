"""volume default type row

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-01 00:45:00

Cinder makes __DEFAULT__ in a migration; so does gureum now, so a request that
only reads (GET /types) never has to write it first.
"""

import datetime as dt

from alembic import op
import sqlalchemy as sa

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

DEFAULT_TYPE_ID = "a4c5d1e6-3f2b-4c1a-9e0d-5f6775726575"  # gureum/volume/types.py


def upgrade() -> None:
    types = sa.table('volume_types', sa.column('id', sa.String), sa.column('name', sa.String),
                     sa.column('description', sa.String), sa.column('is_public', sa.Boolean),
                     sa.column('extra_specs', sa.JSON), sa.column('created_at', sa.DateTime))
    found = op.get_bind().execute(
        sa.select(types.c.id).where(types.c.name == '__DEFAULT__')).first()
    if found is None:
        op.bulk_insert(types, [{
            'id': DEFAULT_TYPE_ID, 'name': '__DEFAULT__', 'description': 'Default Volume Type',
            'is_public': True, 'extra_specs': {},
            'created_at': dt.datetime.now(dt.UTC).replace(tzinfo=None)}])


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM volume_types WHERE id = :id AND NOT EXISTS "
                       "(SELECT 1 FROM volumes WHERE volume_type_id = :id)")
               .bindparams(id=DEFAULT_TYPE_ID))
