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
