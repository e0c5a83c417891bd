"""The console_auth_tokens table (Nova's): what a console URL's token opens, until when."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gureum.db.base import Base, utcnow


class ConsoleAuthToken(Base):
    """One console URL's token, bound to an instance, its host and the console's address.

    Only the token's SHA-256 is kept (as Nova does): a copy of the database opens no
    console. Any API process can check a token, whichever one gave it out.
    """

    __tablename__ = "console_auth_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    console_type: Mapped[str] = mapped_column(String(32))
    instance_uuid: Mapped[str] = mapped_column(String(36), index=True)
    # The compute host the instance was on: its agent is asked again before a connection.
    compute_host: Mapped[str] = mapped_column(String(255))
    # Where the console listens (the guest's VNC websocket), as that agent said.
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    internal_access_path: Mapped[str | None] = mapped_column(String(255), nullable=True)
    access_url_base: Mapped[str] = mapped_column(Text)
    expires: Mapped[dt.datetime] = mapped_column(index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
