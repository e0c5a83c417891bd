"""Database access: the engine, sessions, the model base, and migrations.

This package is the only place sessions are opened (see ``Database.session``);
services receive a session from the edge (an API request, a bus message) and
never open or commit one themselves. ``Session`` is its type, for the edges
that receive a session and pass it on without using it (API handlers).
"""

from sqlalchemy.orm import Session

from gureum.db.base import Base, utcnow
from gureum.db.engine import Database, compare_and_swap

__all__ = ["Base", "Database", "Session", "compare_and_swap", "utcnow"]
