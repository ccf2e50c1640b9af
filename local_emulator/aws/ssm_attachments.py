"""SSM's attachment store, modelled content-addressed: sha256 -> bytes.

A document names an attachment in its top-level `files:` section with `checksums: {sha256: ...}`
(https://docs.aws.amazon.com/systems-manager/latest/userguide/documents-schemas-features.html),
so the checksum, not the name, identifies the content a step runs. The default store holds every
file under ssm_documents/attachments/; tests add their own files.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Dict, Iterable, Optional, Union

__all__ = ["AttachmentStore", "DEFAULT_DIRECTORY", "sha256_of"]

DEFAULT_DIRECTORY = Path(__file__).resolve().parents[2] / "ssm_documents" / "attachments"


def sha256_of(data: bytes) -> str:
    """The hex SHA-256 a document's `files:` entry pins."""
    return hashlib.sha256(data).hexdigest()


class AttachmentStore:
    """Maps sha256 -> bytes (and remembers names, so a mismatch message can name the file)."""

    def __init__(self, directories: Iterable[Path] = ()) -> None:
        self._blobs: Dict[str, bytes] = {}
        self._names: Dict[str, str] = {}
        for directory in directories:
            for path in sorted(Path(directory).glob("*")):
                if path.is_file():
                    self.add(path)

    @classmethod
    def default(cls) -> "AttachmentStore":
        """The store filled from ssm_documents/attachments/ (empty if the folder is absent)."""
        return cls([DEFAULT_DIRECTORY] if DEFAULT_DIRECTORY.is_dir() else [])

    def add(self, source: Union[Path, bytes], name: Optional[str] = None) -> str:
        """Store a file (a path, or bytes with a name); returns its sha256."""
        data = Path(source).read_bytes() if isinstance(source, Path) else bytes(source)
        digest = sha256_of(data)
        self._blobs[digest] = data
        self._names[name or (Path(source).name if isinstance(source, Path) else digest)] = digest
        return digest

    def get(self, digest: str) -> Optional[bytes]:
        """The content with this sha256, or None when no such content was attached."""
        return self._blobs.get(str(digest).lower())

    def digest_of_name(self, name: str) -> Optional[str]:
        """The sha256 of the file last added under `name` (for 'content differs' messages)."""
        return self._names.get(name)
