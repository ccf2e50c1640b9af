"""The attachment store is content-addressed, as a document's files: checksums pin content."""
from local_emulator.aws.ssm_attachments import AttachmentStore, sha256_of


def test_store_returns_content_by_its_sha256(tmp_path):
    (tmp_path / "step.py").write_bytes(b"def handler(events, context):\n    return 1\n")
    store = AttachmentStore([tmp_path])
    digest = sha256_of((tmp_path / "step.py").read_bytes())
    assert store.get(digest) == (tmp_path / "step.py").read_bytes()
    assert store.digest_of_name("step.py") == digest


def test_changed_content_is_not_found_under_the_old_checksum():
    store = AttachmentStore()
    old = sha256_of(b"v1")
    store.add(b"v2", name="step.py")
    assert store.get(old) is None
    assert store.digest_of_name("step.py") == sha256_of(b"v2")
