"""The image store: one file per image under the store directory.

``<store>/<image id>`` holds an active image's data; ``<store>/staging/<image id>``
holds data staged for a glance-direct import. Data is written to a private
temporary file in the same directory, hashed on the way (md5 for ``checksum``,
sha512 for ``os_hash_value``), and only then renamed into place, so a reader
never sees a partial file and a failed write leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gureum.errors import InvalidInput, PayloadTooLarge

CHUNK = 1 << 20
HASH_ALGO = "sha512"
_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_QCOW2_MAGIC = b"QFI\xfb"


@dataclass(frozen=True)
class Written:
    """Data written to a temporary file, not yet in place."""

    path: Path
    size: int
    checksum: str
    os_hash_value: str
    head: bytes  # the first bytes, for format inspection


def virtual_size(disk_format: str | None, size: int, head: bytes) -> int | None:
    """The disk size a guest sees, when the format tells it cheaply (as Glance reports it)."""
    if disk_format == "raw":
        return size
    if disk_format == "qcow2" and len(head) >= 32 and head[:4] == _QCOW2_MAGIC:
        return int(struct.unpack(">Q", head[24:32])[0])
    return None


class ImageStore:
    """Image data files under one directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, image_id: str, staging: bool = False) -> Path:
        if not _ID.match(image_id):  # ids name files: never let one be a path
            raise ValueError(f"not an image id: {image_id!r}")
        return (self.root / "staging" if staging else self.root) / image_id

    def exists(self, image_id: str) -> bool:
        return self.path(image_id).is_file()

    def write(self, image_id: str, chunks: Iterable[bytes], *, staging: bool = False,
              max_size: int = 0, expected_size: int | None = None) -> Written:
        """Stream chunks to a temporary file beside the image's path, hashing them.

        Raises PayloadTooLarge past max_size (0: no limit) and InvalidInput when
        expected_size is given and the data has another length; the temporary
        file is removed on every failure.
        """
        target = self.path(image_id, staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{image_id}.", suffix=".part", dir=target.parent)
        md5 = hashlib.md5(usedforsecurity=False)
        secure = hashlib.new(HASH_ALGO)
        size = 0
        head = b""
        try:
            with os.fdopen(fd, "wb") as fh:
                for chunk in chunks:
                    size += len(chunk)
                    if max_size and size > max_size:
                        raise PayloadTooLarge(
                            f"The incoming image is too large: more than {max_size} bytes.")
                    if expected_size is not None and size > expected_size:
                        raise InvalidInput(
                            f"The image data is longer than the {expected_size} bytes its "
                            "X-OpenStack-Image-Size header announced.",
                            field="X-OpenStack-Image-Size")
                    if len(head) < 512:
                        head += chunk[:512 - len(head)]
                    md5.update(chunk)
                    secure.update(chunk)
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            if expected_size is not None and size != expected_size:
                raise InvalidInput(
                    f"The image data has {size} bytes, its X-OpenStack-Image-Size header "
                    f"announced {expected_size}.",
                    field="X-OpenStack-Image-Size")
        except BaseException:
            _unlink(Path(tmp))
            raise
        return Written(Path(tmp), size, md5.hexdigest(), secure.hexdigest(), head)

    def hash_file(self, path: Path) -> Written:
        """Hash an existing file (staged data) as write() would have."""
        md5 = hashlib.md5(usedforsecurity=False)
        secure = hashlib.new(HASH_ALGO)
        size = 0
        head = b""
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                if not head:
                    head = chunk[:512]
                size += len(chunk)
                md5.update(chunk)
                secure.update(chunk)
        return Written(path, size, md5.hexdigest(), secure.hexdigest(), head)

    def commit(self, written: Written, image_id: str, staging: bool = False) -> Path:
        """Move written data into place (atomically replacing what was there)."""
        target = self.path(image_id, staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(written.path, target)
        return target

    def discard(self, written: Written) -> None:
        _unlink(written.path)

    def delete(self, image_id: str, staging: bool = False) -> None:
        _unlink(self.path(image_id, staging))

    def read(self, image_id: str, offset: int = 0, length: int | None = None
             ) -> Iterator[bytes]:
        """The data (or a byte range of it), in chunks; the file opens on the first read."""
        path = self.path(image_id)
        with path.open("rb") as fh:
            fh.seek(offset)
            left = length
            while left is None or left > 0:
                chunk = fh.read(CHUNK if left is None else min(CHUNK, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
