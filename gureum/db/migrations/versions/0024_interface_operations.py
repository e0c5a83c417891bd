"""interface operations and device tags

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-01 03:35:00

A NIC attach, detach or unplug (a port deleted under a server) is recorded while
it is under way, so a restart finishes it; a NIC's device role tag is kept on its
port while attached.
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(
    mysql.DATETIME(fsp=6), 'mysql')


def upgrade() -> None:
    op.create_table(
        'compute_interface_operations',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('instance_id', sa.String(length=36), nullable=False),
        sa.Column('port_id', sa.String(length=36), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('request_id', sa.String(length=64), nullable=False),
        sa.Column('created_at', TIMESTAMP, nullable=False),
        sa.Column('lease_until', TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_compute_interface_operations')),
        sa.UniqueConstraint('instance_id', 'port_id',
                            name=op.f('uq_compute_interface_operations_instance_id_port_id'))
    )
    with op.batch_alter_table('compute_interface_operations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compute_interface_operations_created_at'),
                              ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_compute_interface_operations_instance_id'),
                              ['instance_id'], unique=False)
    with op.batch_alter_table('network_ports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('device_tag', sa.String(length=60), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('network_ports', schema=None) as batch_op:
        batch_op.drop_column('device_tag')
    op.drop_table('compute_interface_operations')
