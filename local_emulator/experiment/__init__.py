"""The experiment: what a user runs with ``python -m local_emulator`` (``make experiment``).

It deploys with ``deploy.sh --local``, starts the FIS experiment template, sends customer load
through Route 53 and API Gateway, and writes the report: pre-experiment, experiment and
post-experiment phases as a FIS experiment report shows them ("Experiment reports for AWS
FIS"), the hypotheses and their verdicts, failover times, and the configuration diff that
proves every function was left exactly as it was (``snapshot.py``).

- ``orchestration.py`` — one run, start to clean-up;
- ``load.py`` — the customer load (open loop, latency from the scheduled time);
- ``report.py`` — verdicts, tables, the HTML report; ``noise.py`` — thresholds from the run's
  own noise; ``leftovers.py`` — what a function left changed still does;
- the page is the deployed CloudWatch dashboard: ``dashboard_data.py`` reads each dashboard
  (GetDashboard) and each widget's metrics (GetMetricData) from the emulator's CloudWatch,
  ``dashboard_html.py`` draws them, ``charts.py`` is the one chart drawer (full width, y axis
  from zero, the bucket stated, the fault's span shaded), ``record_charts.py`` the same views
  from the load's records when no dashboard exists; ``screenshot.py`` and ``export_charts.py``
  make ``docs/report.png`` and the README's SVGs (``make report-png``);
- ``snapshot.py``, ``run_options.py``, ``deployment.py`` (with ``deploy_script.py``, which runs
  ``deploy.sh``);
- an organisation-wide run (issue 12): ``organization.py`` deploys its target accounts (the
  target stack, a fleet of tagged functions), ``locations.py`` reports each account and Region.

This package uses ``aws/`` and ``environment/``; nothing there imports it.
"""
