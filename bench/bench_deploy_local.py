"""How long `deploy.sh --local` takes, and how many AWS CLI calls it makes, per phase.

    .venv/bin/python bench/bench_deploy_local.py [--repeat 3] [--with-sample-app]

Starts its own moto server, then per repeat: a first deploy (create), a re-deploy (update in
place) and a delete, each timed and with its `aws` invocations counted through a shim. Prints
a table of medians. Run by hand; nothing here is asserted.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.deploy_fixtures import BIN, ROOT, MotoServer, run_deploy  # noqa: E402

SHIM = """#!/bin/sh
echo "$*" >> "{log}"
exec "{aws}" "$@"
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--with-sample-app", action="store_true")
    args = parser.parse_args()
    server = MotoServer()
    rows = {"create": [], "update": [], "delete": []}
    calls = {"create": [], "update": [], "delete": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "calls.log"
            shim = Path(tmp) / "aws"
            shim.write_text(SHIM.format(log=log, aws=BIN / "aws"))
            shim.chmod(0o755)
            for _ in range(args.repeat):
                stack = f"bench-{uuid.uuid4().hex[:8]}"
                base = ["--local", "--endpoint-url", server.url, "--region", "us-east-1",
                        "--stack-name", stack] + (["--with-sample-app"] if args.with_sample_app else [])
                for phase, extra in (("create", []), ("update", []), ("delete", ["--delete"])):
                    log.write_text("")
                    start = time.monotonic()
                    done = run_deploy(base + extra, {"AWS_CLI": str(shim)}, timeout=600)
                    elapsed = time.monotonic() - start
                    if done.returncode != 0:
                        print(done.stderr[-2000:], file=sys.stderr)
                        return 1
                    rows[phase].append(elapsed)
                    calls[phase].append(len(log.read_text().splitlines()))
                os.system(f"rm -rf {ROOT / 'dist' / 'deploy' / stack}")
    finally:
        server.stop()
    print(f"deploy.sh --local{' --with-sample-app' if args.with_sample_app else ''}, "
          f"{args.repeat} repeats, medians")
    print(f"{'phase':<8} {'wall s':>8} {'min s':>8} {'max s':>8} {'aws calls':>10}")
    for phase in rows:
        times = rows[phase]
        print(f"{phase:<8} {statistics.median(times):8.1f} {min(times):8.1f} {max(times):8.1f} "
              f"{statistics.median(calls[phase]):10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
