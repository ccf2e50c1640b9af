"""Write the layer zip with fixed timestamps and explicit modes (reproducible; exec bits kept).

Called by build.sh. Kept out of the chaos_layer package: it never ships inside the layer.
"""
import sys
import zipfile
from pathlib import Path

_EPOCH = (1980, 1, 1, 0, 0, 0)


def layer_entries(src: Path):
    """(path inside the zip, source file, mode) for every file the layer ships."""
    yield "extensions/lambda-chaos-extension", src / "extensions" / "lambda-chaos-extension", 0o755
    yield "lambda-chaos/wrapper", src / "wrapper", 0o755
    yield "lambda-chaos/settings.json", src / "settings.json", 0o644  # read by chaos_layer.config
    for module in sorted((src / "chaos_layer").glob("*.py")):
        yield f"lambda-chaos/chaos_layer/{module.name}", module, 0o644


def build(src: Path, out: Path) -> None:
    tmp = out.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path, mode in layer_entries(src):
            info = zipfile.ZipInfo(name, _EPOCH)
            info.external_attr = (0o100000 | mode) << 16  # regular file + permission bits
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    tmp.replace(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    build(Path(sys.argv[1]), Path(sys.argv[2]).resolve())
