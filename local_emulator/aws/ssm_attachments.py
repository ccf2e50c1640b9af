"""Document attachments as SSM keeps them: content found by its SHA-256.

A document's `files:` section pins each attachment by checksum, and an `aws:executeScript`
step names one with `Attachment` (aws:executeScript: "Specify the same value as the Name of the
document attachment file"). SSM stores the attachment at CreateDocument; moto does not, so the
local twin looks the content up by the checksum the document pins, among the repository's
rendered attachments (`ssm_documents/attachments/`) and any a caller adds.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Dict, Iterable, Optional

from local_emulator.errors import DocumentError

__all__ = ["AttachmentStore", "DEFAULT_DIRECTORY"]

DEFAULT_DIRECTORY = Path(__file__).resolve().parents[2] / "ssm_documents" / "attachments"


class AttachmentStore:
    """sha256 → bytes. `default()` holds every file of ssm_documents/attachments/."""

    def __init__(self, files: Iterable[bytes] = ()) -> None:
        self._by_digest: Dict[str, bytes] = {}
        for content in files:
            self.add(content)

    @classmethod
    def default(cls) -> "AttachmentStore":
        store = cls()
        if DEFAULT_DIRECTORY.is_dir():
            for path in sorted(DEFAULT_DIRECTORY.iterdir()):
                if path.is_file():
                    store.add(path.read_bytes())
        return store

    def add(self, content: bytes) -> str:
        digest = hashlib.sha256(content).hexdigest()
        self._by_digest[digest] = content
        return digest

    def get(self, name: str, digest: Optional[str], document: str) -> bytes:
        """The attachment `name` the document pins with `digest`; refused in words if absent."""
        if not digest:
            raise DocumentError(f"document {document}: attachment {name!r} has no entry in the "
                                "document's files: section (files: {name: {checksums: {sha256: "
                                "...}}}); SSM refuses such a document")
        content = self._by_digest.get(digest.lower())
        if content is None:
            raise DocumentError(f"document {document}: attachment {name!r} with sha256 {digest} "
                                "was never uploaded (no such content in ssm_documents/attachments/); "
                                "run python ssm_documents/render.py and deploy again")
        return content
