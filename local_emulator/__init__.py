"""The local twin: a whole chaos experiment on one machine, offline, in three parts.

- ``environment/`` — **the Lambda execution environment**: the Runtime and Extensions APIs,
  the processes a function runs in (AWS's real runtime clients, the layer's extension), the
  init phase and the sandbox that keeps environments per function version.
- ``aws/`` — **the AWS twins**: the embedded moto server, the FIS and SSM Automation runners,
  Route 53 health checks and latency routing, API Gateway's Lambda proxy integration and
  CloudWatch (alarms, embedded metric format, GetMetricData).
- ``experiment/`` — **the experiment**: orchestration, customer load, the report, the
  exact-restore snapshot, run options and noise estimates.

Imports run one way: ``experiment`` uses ``aws`` and ``environment``; ``aws`` uses
``environment`` (API Gateway invokes functions in the sandbox); ``environment`` uses neither.
``clock.py`` (template time) and ``errors.py`` (the exceptions) sit above all three, because
all three read them; they import nothing from the subpackages (tests/test_emulator_layout.py).
"""
import sys
from pathlib import Path

# The layer's package lives in layer/ (it ships under /opt/lambda-chaos, not /opt/python); the
# emulator reads its configuration names (chaos_layer.config), so importing the emulator puts
# it on the path, once for every entry point (python -m local_emulator, the screenshot, the
# chart export).
LAYER_DIR = Path(__file__).resolve().parent.parent / "layer"
if str(LAYER_DIR) not in sys.path:
    sys.path.insert(0, str(LAYER_DIR))
