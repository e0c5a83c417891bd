"""The declarative base and the column helpers every model uses."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import JSON, DateTime, MetaData
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names, so migrations are the same on every database.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Microsecond precision everywhere (MariaDB's DATETIME drops it by default).
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict: JSON, list: JSON, dt.datetime: Timestamp}


def utcnow() -> dt.datetime:
    """Naive UTC now, as stored in the database."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def new_id() -> str:
    """Identity-style id: 32 hex characters."""
    return uuid.uuid4().hex


def new_uuid() -> str:
    """Compute/image-style id: a dashed UUID."""
    return str(uuid.uuid4())
