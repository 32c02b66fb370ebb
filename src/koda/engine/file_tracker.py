"""Files this session created, remembered in the store so it survives a restart."""

from __future__ import annotations

from pathlib import Path

from koda.store import Store


class FileTracker:
    """Owned files live in the store; what was read lives in memory (a new process reads again)."""

    def __init__(self, db: Store, session_id: str) -> None:
        self._db = db
        self._session_id = session_id
        self._reads: dict[Path, str] = {}

    def record_read(self, path: Path, digest: str) -> None:
        self._reads[path] = digest

    def read_digest(self, path: Path) -> str | None:
        return self._reads.get(path)

    def forget_reads(self) -> None:
        """After compaction the model no longer has the text it read: Read must show files
        again instead of calling them unchanged, and Edit must ask for a fresh Read."""
        self._reads.clear()

    def record_created(self, path: Path) -> None:
        self._db.sessions.add_owned_file(self._session_id, str(path))

    def is_owned(self, path: Path) -> bool:
        return str(path) in self._db.sessions.owned_files(self._session_id)
