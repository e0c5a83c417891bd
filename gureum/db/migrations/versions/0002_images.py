"""images: images, custom properties, tags, members; metadata definitions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 07:40:00
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('image_images',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('visibility', sa.String(length=20), nullable=False),
    sa.Column('protected', sa.Boolean(), nullable=False),
    sa.Column('os_hidden', sa.Boolean(), nullable=False),
    sa.Column('owner', sa.String(length=255), nullable=True),
    sa.Column('disk_format', sa.String(length=20), nullable=True),
    sa.Column('container_format', sa.String(length=20), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('virtual_size', sa.BigInteger(), nullable=True),
    sa.Column('checksum', sa.String(length=32), nullable=True),
    sa.Column('os_hash_algo', sa.String(length=64), nullable=True),
    sa.Column('os_hash_value', sa.String(length=128), nullable=True),
    sa.Column('min_disk', sa.Integer(), nullable=False),
    sa.Column('min_ram', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('updated_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_image_images'))
    )
    with op.batch_alter_table('image_images', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_image_images_checksum'), ['checksum'], unique=False)
        batch_op.create_index(batch_op.f('ix_image_images_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_image_images_name'), ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_image_images_os_hash_value'), ['os_hash_value'], unique=False)
        batch_op.create_index(batch_op.f('ix_image_images_owner'), ['owner'], unique=False)
        batch_op.create_index(batch_op.f('ix_image_images_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_image_images_updated_at'), ['updated_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_image_images_visibility'), ['visibility'], unique=False)

    op.create_table('image_metadef_namespaces',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('namespace', sa.String(length=80).with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=80), 'mariadb').with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=80), 'mysql'), nullable=False),
    sa.Column('display_name', sa.String(length=80), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('visibility', sa.String(length=32), nullable=False),
    sa.Column('protected', sa.Boolean(), nullable=False),
    sa.Column('owner', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('updated_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_image_metadef_namespaces')),
    sa.UniqueConstraint('namespace', name=op.f('uq_image_metadef_namespaces_namespace'))
    )
    with op.batch_alter_table('image_metadef_namespaces', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_image_metadef_namespaces_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_image_metadef_namespaces_owner'), ['owner'], unique=False)

    op.create_table('image_metadef_resource_types',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=80).with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=80), 'mariadb').with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=80), 'mysql'), nullable=False),
    sa.Column('protected', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('updated_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_image_metadef_resource_types')),
    sa.UniqueConstraint('name', name=op.f('uq_image_metadef_resource_types_name'))
    )
    op.create_table('image_members',
    sa.Column('image_id', sa.String(length=36), nullable=False),
    sa.Column('member_id', sa.String(length=255).with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=255), 'mariadb').with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=255), 'mysql'), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('updated_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['image_images.id'], name=op.f('fk_image_members_image_id_image_images'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('image_id', 'member_id', name=op.f('pk_image_members'))
    )
    with op.batch_alter_table('image_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_image_members_member_id'), ['member_id'], unique=False)

    op.create_table('image_metadef_associations',
    sa.Column('namespace_id', sa.Integer(), nullable=False),
    sa.Column('resource_type_id', sa.Integer(), nullable=False),
    sa.Column('prefix', sa.String(length=80), nullable=True),
    sa.Column('properties_target', sa.String(length=80), nullable=True),
    sa.Column('created_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('updated_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.ForeignKeyConstraint(['namespace_id'], ['image_metadef_namespaces.id'], name=op.f('fk_image_metadef_associations_namespace_id_image_metadef_namespaces'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['resource_type_id'], ['image_metadef_resource_types.id'], name=op.f('fk_image_metadef_associations_resource_type_id_image_metadef_resource_types'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('namespace_id', 'resource_type_id', name=op.f('pk_image_metadef_associations'))
    )
    with op.batch_alter_table('image_metadef_associations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_image_metadef_associations_resource_type_id'), ['resource_type_id'], unique=False)

    op.create_table('image_metadef_objects',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('namespace_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80).with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=80), 'mariadb').with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=80), 'mysql'), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('required', sa.JSON(), nullable=True),
    sa.Column('properties', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('updated_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.ForeignKeyConstraint(['namespace_id'], ['image_metadef_namespaces.id'], name=op.f('fk_image_metadef_objects_namespace_id_image_metadef_namespaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_image_metadef_objects')),
    sa.UniqueConstraint('namespace_id', 'name', name=op.f('uq_image_metadef_objects_namespace_id_name'))
    )
    with op.batch_alter_table('image_metadef_objects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_image_metadef_objects_namespace_id'), ['namespace_id'], unique=False)

    op.create_table('image_metadef_properties',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('namespace_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80).with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=80), 'mariadb').with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=80), 'mysql'), nullable=False),
    sa.Column('schema', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('updated_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.ForeignKeyConstraint(['namespace_id'], ['image_metadef_namespaces.id'], name=op.f('fk_image_metadef_properties_namespace_id_image_metadef_namespaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_image_metadef_properties')),
    sa.UniqueConstraint('namespace_id', 'name', name=op.f('uq_image_metadef_properties_namespace_id_name'))
    )
    with op.batch_alter_table('image_metadef_properties', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_image_metadef_properties_namespace_id'), ['namespace_id'], unique=False)

    op.create_table('image_metadef_tags',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('namespace_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255).with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=255), 'mariadb').with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=255), 'mysql'), nullable=False),
    sa.Column('created_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.Column('updated_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.ForeignKeyConstraint(['namespace_id'], ['image_metadef_namespaces.id'], name=op.f('fk_image_metadef_tags_namespace_id_image_metadef_namespaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_image_metadef_tags')),
    sa.UniqueConstraint('namespace_id', 'name', name=op.f('uq_image_metadef_tags_namespace_id_name'))
    )
    with op.batch_alter_table('image_metadef_tags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_image_metadef_tags_namespace_id'), ['namespace_id'], unique=False)

    op.create_table('image_properties',
    sa.Column('image_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255).with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=255), 'mariadb').with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=255), 'mysql'), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['image_images.id'], name=op.f('fk_image_properties_image_id_image_images'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('image_id', 'name', name=op.f('pk_image_properties'))
    )
    with op.batch_alter_table('image_properties', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_image_properties_name'), ['name'], unique=False)

    op.create_table('image_tags',
    sa.Column('image_id', sa.String(length=36), nullable=False),
    sa.Column('value', sa.String(length=255).with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=255), 'mariadb').with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=255), 'mysql'), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['image_images.id'], name=op.f('fk_image_tags_image_id_image_images'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('image_id', 'value', name=op.f('pk_image_tags'))
    )
    with op.batch_alter_table('image_tags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_image_tags_value'), ['value'], unique=False)


def downgrade() -> None:
    op.drop_table('image_tags')
    op.drop_table('image_properties')
    op.drop_table('image_metadef_tags')
    op.drop_table('image_metadef_properties')
    op.drop_table('image_metadef_objects')
    op.drop_table('image_metadef_associations')
    op.drop_table('image_members')
    op.drop_table('image_metadef_resource_types')
    op.drop_table('image_metadef_namespaces')
    op.drop_table('image_images')
