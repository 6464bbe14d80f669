"""Where media files live: local uploads (pictures, video, audio, avatars) under their names, and
the remote media cache in its folder. One interface (MediaStorage) for every write, read and
delete, so that another backend (object storage) can be added behind it later.

DirectoryStorage, the one backend today, is a directory ([media] media_dir). Several machines
(web processes and workers, docs/scaling.md) share it over NFS or similar: every file is written
under a temporary name unique to its writer and renamed into place (atomic on one filesystem, NFS
included), so no reader sees half a file and two machines writing the same content-addressed name
at once cannot interleave their bytes. Methods are synchronous (file I/O): call them in a thread
(asyncio.to_thread) from the event loop, as the callers do."""
from __future__ import annotations

import os
import re
import secrets
import socket
from pathlib import Path
from typing import Protocol

# A stored name: no directory parts, no hidden files (names are made by this server; anything else
# is refused rather than resolved).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_FOLDERS = ("", "cache")


class MediaStorage(Protocol):
    def path(self, name: str, folder: str = "") -> Path: ...

    def exists(self, name: str, folder: str = "") -> bool: ...

    def write(self, name: str, data: bytes, folder: str = "") -> None: ...

    def delete(self, name: str, folder: str = "") -> bool: ...


class DirectoryStorage:
    """Media files in a directory (shared between machines over NFS or similar)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str, folder: str = "") -> Path:
        """The file's local path (FileResponse serves it with Range support; ffmpeg reads it)."""
        if folder not in _FOLDERS or not _NAME.match(name) or name.endswith(".part"):
            raise ValueError(f"not a media file name: {name!r}")
        return self.root / folder / name if folder else self.root / name

    def exists(self, name: str, folder: str = "") -> bool:
        return self.path(name, folder).is_file()

    def write(self, name: str, data: bytes, folder: str = "") -> None:
        """Write the file whole under its name (replacing one there)."""
        target = self.path(name, folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(4)}.part")
        try:
            partial.write_bytes(data)
            partial.replace(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    def delete(self, name: str, folder: str = "") -> bool:
        """Remove the file; False when it was not there."""
        try:
            self.path(name, folder).unlink()
            return True
        except FileNotFoundError:
            return False
