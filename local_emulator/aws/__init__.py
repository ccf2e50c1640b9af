"""The AWS twins: the services an experiment touches, each modelled from its own documentation.

- **moto** (``moto_server.py``, ``moto_main.py``, ``moto_capacity_provider.py``,
  ``moto_cloudwatch.py``): the embedded AWS APIs, with the gaps this project depends on filled
  deliberately (compressed requests, Lambda's ``CapacityProviderConfig``, GetMetricData's
  percentiles and exact dimensions) — "GetMetricData", "GetMetricStatistics"; acting in another
  of its accounts through STS AssumeRole (``accounts.py``).
- **FIS** (``fis_runner.py``): an experiment template's actions, ``startAfter``, durations,
  stop conditions and targets — "AWS FIS actions reference", "Stop conditions for AWS FIS".
- **SSM Automation** (``ssm_document.py``, ``ssm_runner.py``, ``_script_host.py``): schema 0.3
  documents, ``aws:executeScript``, ``aws:sleep``, ``onFailure``/``onCancel`` — "Systems
  Manager Automation actions reference".
- **Route 53** (``route53.py``): health checks (interval, failure threshold, the checkers'
  majority), their HealthCheckStatus metric in us-east-1, and latency-based routing with
  failover — "How Amazon Route 53 determines whether a health check is healthy", "Monitoring
  health checks using CloudWatch", "Latency-based routing".
- **API Gateway** (``api_gateway.py``): the REST API's Lambda proxy integration and its 29 s
  integration timeout — "Lambda proxy integrations", "Amazon API Gateway quotas".
- **CloudWatch** (``cloudwatch.py``, ``emf.py``): metrics, alarm evaluation as CloudWatch
  evaluates alarms, and CloudWatch Logs' extraction of embedded-metric-format lines — "Using
  Amazon CloudWatch alarms", "Specification: Embedded metric format".

This package uses ``environment/`` (API Gateway invokes functions in the sandbox) and never
``experiment/``.
"""
