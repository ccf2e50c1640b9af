"""Where the sandbox gets a function's code and layers: from the emulator, by content hash.

moto keeps a function's code but hands out no usable download URL (its `Code.Location` names a
bucket that does not exist), and `GetLayerVersion` answers `s3://`. What it does keep exactly is
`CodeSha256`. So the store looks code up by that hash among the objects in the emulator's S3
(where `aws cloudformation package`, hence `deploy.sh --local`, uploads every zip), and among
zips registered directly. A hit is verified by its hash, so the sandbox can never run code other
than what the function's configuration says; a miss is an error naming the function and hash.

Extraction keeps the zip's Unix permissions: a layer's `extensions/*` and wrapper must stay
executable, and `ZipFile.extractall` alone would drop the bit.
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import threading
import zipfile
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from local_emulator.errors import SandboxError

__all__ = ["CodeStore", "code_sha256", "extract_zip"]


def code_sha256(data: bytes) -> str:
    """Lambda's CodeSha256: base64 of the SHA-256 of the zip's bytes."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def extract_zip(data: bytes, destination: Path) -> None:
    """Unzip into `destination` with the archive's file modes; refuse paths that escape it."""
    destination = Path(destination).resolve()
    destination.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for member in archive.infolist():
            target = (destination / member.filename).resolve()
            if destination not in target.parents and target != destination:
                raise SandboxError(f"zip member {member.filename!r} would land outside "
                                   f"{destination}; rebuild the zip with relative paths")
            archive.extract(member, destination)
            mode = (member.external_attr >> 16) & 0o7777
            if mode and not member.is_dir():
                os.chmod(target, mode)


class CodeStore:
    """Finds zips by CodeSha256 in the emulator's S3 and in what was `register`ed."""

    def __init__(self, aws: Any) -> None:
        self.aws = aws
        self._known: Dict[str, bytes] = {}
        self._scanned: Dict[Tuple[str, str, str], str] = {}  # (bucket, key, etag) → sha
        self._lock = threading.Lock()

    def register(self, data: bytes) -> str:
        """Make a zip findable by its hash (tests, inline code); returns its CodeSha256."""
        sha = code_sha256(data)
        with self._lock:
            self._known[sha] = data
        return sha

    def get(self, sha: str, what: str) -> bytes:
        """The zip whose CodeSha256 is `sha`; `what` names the function or layer for the error."""
        with self._lock:
            if sha in self._known:
                return self._known[sha]
            found = self._scan_s3(sha)
        if found is None:
            raise SandboxError(f"the code of {what} (CodeSha256 {sha}) is not in the emulator's S3; "
                               "deploy it with deploy.sh --local (which uploads every zip) or "
                               "register the zip with CodeStore.register")
        return found

    def function_zip(self, region: str, configuration: Dict[str, Any]) -> bytes:
        return self.get(configuration["CodeSha256"],
                        f"function {configuration['FunctionName']} in {region}")

    def layer_zip(self, region: str, layer_version_arn: str) -> bytes:
        """A layer version's zip; the ARN is parsed because moto lacks GetLayerVersionByArn."""
        parts = layer_version_arn.split(":")
        if len(parts) != 8 or parts[5] != "layer":
            raise SandboxError(f"{layer_version_arn!r} is not a layer version ARN "
                               "(arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION)")
        layer_region = parts[3] or region
        try:
            version = self.aws.client("lambda", layer_region).get_layer_version(
                LayerName=parts[6], VersionNumber=int(parts[7]))
        except Exception as exc:  # botocore ClientError: say which layer, not a traceback
            raise SandboxError(f"layer {layer_version_arn} cannot be read from the emulator: "
                               f"{exc}") from None
        return self.get(version["Content"]["CodeSha256"], f"layer {layer_version_arn}")

    def _scan_s3(self, sha: str) -> Optional[bytes]:
        s3 = self.aws.client("s3")
        for bucket in s3.list_buckets().get("Buckets", []):
            paginator = s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket["Name"]):
                for item in page.get("Contents", []):
                    key = (bucket["Name"], item["Key"], item.get("ETag", ""))
                    if key in self._scanned and self._scanned[key] != sha:
                        continue
                    body = s3.get_object(Bucket=bucket["Name"], Key=item["Key"])["Body"].read()
                    self._scanned[key] = code_sha256(body)
                    if self._scanned[key] == sha:
                        self._known[sha] = body
                        return body
        return None
