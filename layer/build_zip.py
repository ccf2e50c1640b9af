"""Write the layer zip with fixed timestamps and explicit modes (reproducible; exec bits kept).

Called by build.sh with the folder holding the two built binaries. Kept out of the layer: it
never ships inside it.
"""
import os
import sys
import tempfile
import zipfile
from pathlib import Path

_EPOCH = (1980, 1, 1, 0, 0, 0)
ARCHES = ("amd64", "arm64")


def layer_entries(src: Path, bin_dir: Path):
    """(path inside the zip, source file, mode) for every file the layer ships."""
    yield "extensions/lambda-chaos-extension", src / "extensions" / "lambda-chaos-extension", 0o755
    for arch in ARCHES:
        name = f"lambda-chaos-extension-{arch}"
        yield f"lambda-chaos/bin/{name}", bin_dir / name, 0o755
    yield "lambda-chaos/wrapper", src / "wrapper", 0o755


def build(src: Path, out: Path, bin_dir: Path) -> None:
    """Write the zip beside `out` under a name of its own, then rename it into place: two
    builds at once (a test's deploy and the user's) each replace `out` whole, and neither
    renames away the other's half-written file."""
    handle, name = tempfile.mkstemp(prefix=out.name + ".", suffix=".tmp", dir=out.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        _write(src, tmp, bin_dir)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would keep the zip from other users
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"wrote {out} ({out.stat().st_size} bytes)")


def _write(src: Path, tmp: Path, bin_dir: Path) -> None:
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, path, mode in layer_entries(src, bin_dir):
            info = zipfile.ZipInfo(name, _EPOCH)
            info.external_attr = (0o100000 | mode) << 16  # regular file + permission bits
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, whatever the building machine: the bytes stay equal
            archive.writestr(info, path.read_bytes())


if __name__ == "__main__":
    build(Path(sys.argv[1]), Path(sys.argv[2]).resolve(), Path(sys.argv[3]))
