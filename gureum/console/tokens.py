"""Console tokens: given out inside a console URL, checked by the proxy before it connects.

Nova's ConsoleAuthToken, in one table any API process reads: a token is 32
random bytes (URL-safe text), good for ``[vnc] token_ttl`` seconds, bound to
the instance, the compute host it ran on and the address its console listens
at. The proxy connects only there, and only while the instance is still on
that host; the host's agent is asked once more (``gureum/console/api.py``) so
a port a new guest process took over is never reached with an old token.
Only the token's SHA-256 is stored. Expired tokens are removed whenever a new
one is given out; an instance's tokens are removed when it is deleted, and those
for its old host when it moves (``compute/instances.py`` calls ``remove_for``, as
Nova's ``clean_console_auths_for_instance``). The caller owns the session.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import posixpath
import secrets
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gureum.compute.models import Instance
from gureum.console.models import ConsoleAuthToken
from gureum.db.base import utcnow

# The proxy's websocket, beside the noVNC page of the URL (noVNC's default name).
WEBSOCKET = "websockify"


@dataclass(frozen=True)
class Connect:
    """What a valid token opens."""

    instance_id: str
    compute_host: str  # whose agent knows the console
    host: str  # where the console listens
    port: int
    path: str | None
    console_type: str
    expires: dt.datetime


@dataclass(frozen=True)
class Issued:
    token: str
    url: str
    expires: dt.datetime


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def access_url(base_url: str, token: str) -> str:
    """The URL a browser opens: the noVNC page, told (noVNC's ``path`` parameter, as Nova
    gives it) to open the proxy's websocket beside it with the token."""
    page = urlsplit(base_url).path or "/"
    folder = posixpath.dirname(page).strip("/")
    socket = f"{folder}/{WEBSOCKET}" if folder else WEBSOCKET
    separator = "&" if "?" in base_url else "?"
    return f"{base_url}{separator}path={quote(f'{socket}?token={token}', safe='')}"


def issue(s: Session, *, instance_id: str, compute_host: str, console_type: str, host: str,
          port: int, path: str | None, base_url: str, ttl: int) -> Issued:
    """A new token for the instance's console at host:port; expired ones go."""
    clean_expired(s)
    token = secrets.token_urlsafe(32)
    expires = utcnow() + dt.timedelta(seconds=ttl)
    s.add(ConsoleAuthToken(token_hash=token_hash(token), console_type=console_type,
                           instance_uuid=instance_id, compute_host=compute_host, host=host,
                           port=port, internal_access_path=path, access_url_base=base_url,
                           expires=expires))
    s.flush()
    return Issued(token, access_url(base_url, token), expires)


def find(s: Session, token: str) -> Connect | None:
    """What the token opens, if it was given out and has not expired."""
    if not token:
        return None
    row = s.scalar(select(ConsoleAuthToken).where(
        ConsoleAuthToken.token_hash == token_hash(token)))
    if row is None or row.expires <= utcnow():
        return None
    return Connect(row.instance_uuid, row.compute_host, row.host, row.port,
                   row.internal_access_path, row.console_type, row.expires)


def check(s: Session, token: str) -> Connect | None:
    """``find``, and the instance is still there on the host the token was given for
    (a deleted or moved guest's console is not the token's any more)."""
    found = find(s, token)
    if found is None:
        return None
    inst = s.get(Instance, found.instance_id)
    if inst is None or inst.deleted or inst.host != found.compute_host:
        return None
    return found


def clean_expired(s: Session) -> int:
    """Remove every expired token; how many there were."""
    result = s.execute(delete(ConsoleAuthToken).where(ConsoleAuthToken.expires <= utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)


def remove_for(s: Session, instance_id: str, except_host: str | None = None) -> int:
    """Remove the instance's tokens (but those for ``except_host``, when given: the host
    it now runs on); how many there were."""
    stmt = delete(ConsoleAuthToken).where(ConsoleAuthToken.instance_uuid == instance_id)
    if except_host is not None:
        stmt = stmt.where(ConsoleAuthToken.compute_host != except_host)
    result = s.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)
