"""identity: access rules, endpoint groups (OS-EP-FILTER), unified limits

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 07:22:10.608673
"""

from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('identity_endpoint_groups',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('filters', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_endpoint_groups'))
    )
    op.create_table('identity_registered_limits',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('service_id', sa.String(length=64), nullable=False),
    sa.Column('region_id', sa.String(length=255), nullable=False),
    sa.Column('resource_name', sa.String(length=255), nullable=False),
    sa.Column('default_limit', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['service_id'], ['identity_services.id'], name=op.f('fk_identity_registered_limits_service_id_identity_services')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_registered_limits')),
    sa.UniqueConstraint('service_id', 'region_id', 'resource_name', name=op.f('uq_identity_registered_limits_service_id_region_id_resource_name'))
    )
    with op.batch_alter_table('identity_registered_limits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_registered_limits_service_id'), ['service_id'], unique=False)

    op.create_table('identity_access_rules',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('path', sa.String(length=225), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['identity_users.id'], name=op.f('fk_identity_access_rules_user_id_identity_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_access_rules')),
    sa.UniqueConstraint('user_id', 'service', 'path', 'method', name=op.f('uq_identity_access_rules_user_id_service_path_method'))
    )
    with op.batch_alter_table('identity_access_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_access_rules_user_id'), ['user_id'], unique=False)

    op.create_table('identity_limits',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('registered_limit_id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('domain_id', sa.String(length=64), nullable=False),
    sa.Column('resource_limit', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['registered_limit_id'], ['identity_registered_limits.id'], name=op.f('fk_identity_limits_registered_limit_id_identity_registered_limits')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_limits')),
    sa.UniqueConstraint('registered_limit_id', 'project_id', 'domain_id', name=op.f('uq_identity_limits_registered_limit_id_project_id_domain_id'))
    )
    with op.batch_alter_table('identity_limits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_limits_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_identity_limits_registered_limit_id'), ['registered_limit_id'], unique=False)

    op.create_table('identity_project_endpoint_groups',
    sa.Column('endpoint_group_id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_group_id'], ['identity_endpoint_groups.id'], name=op.f('fk_identity_project_endpoint_groups_endpoint_group_id_identity_endpoint_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['identity_projects.id'], name=op.f('fk_identity_project_endpoint_groups_project_id_identity_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('endpoint_group_id', 'project_id', name=op.f('pk_identity_project_endpoint_groups'))
    )
    with op.batch_alter_table('identity_project_endpoint_groups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_project_endpoint_groups_project_id'), ['project_id'], unique=False)

    op.create_table('identity_project_endpoints',
    sa.Column('endpoint_id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['identity_endpoints.id'], name=op.f('fk_identity_project_endpoints_endpoint_id_identity_endpoints'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['identity_projects.id'], name=op.f('fk_identity_project_endpoints_project_id_identity_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('endpoint_id', 'project_id', name=op.f('pk_identity_project_endpoints'))
    )
    with op.batch_alter_table('identity_project_endpoints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_project_endpoints_project_id'), ['project_id'], unique=False)


def downgrade() -> None:
    op.drop_table('identity_project_endpoints')
    op.drop_table('identity_project_endpoint_groups')
    op.drop_table('identity_limits')
    op.drop_table('identity_access_rules')
    op.drop_table('identity_registered_limits')
    op.drop_table('identity_endpoint_groups')
