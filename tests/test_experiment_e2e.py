"""End to end: the real deploy.sh, templates, SSM document, handler and layer, on the emulator.

One moto server and one deploy (both regions) serve the four runs, as a user would run several
experiments on one deployment; each run captures the configurations itself. Time is compressed
(scale 10–20); each run takes 40–65 s here. The organisation-wide run comes last: it adds its
target accounts to the deployment (two target stacks' deploys, the second account's fleet) and
takes ~2.7 min with them.

Tolerances, stated: the injected latency must show as a p50 rise within ±15 % (the emulator's
own per-request jitter, a few real ms, is multiplied by the time scale); recovery within the
report's allowance, 10 % plus the steady state's own measured spread; error rates against their
sampling noise (report.py, noise.py). A failing assertion prints the report's table, which
names each failure's cause and the emulator's own stalls.
"""
import json
from pathlib import Path

import pytest

from local_emulator.aws.accounts import DEFAULT_ACCOUNT
from local_emulator.experiment.deployment import ROOT, deploy, discover
from local_emulator.experiment.organization import TARGET_ACCOUNT
from local_emulator.experiment.orchestration import Settings, run_experiment
from local_emulator.aws.moto_server import MotoServer

REGIONS = ("us-east-1", "eu-west-1")


@pytest.fixture(scope="session")  # not module: under xdist another module's tests may run
def deployed(tmp_path_factory):     # between these on their worker, and it would deploy twice
    logs = tmp_path_factory.mktemp("deploy")
    server = MotoServer(log_path=str(logs / "moto.log")).start()
    try:
        # the documents shared with the organisation run's second account (--target-accounts)
        deploy(server.endpoint_url, REGIONS, server.env(), logs, target_accounts=[TARGET_ACCOUNT])
        yield server, discover(server, REGIONS)
    finally:
        server.stop()


def _run(deployed, tmp_path, **settings):
    server, deployment = deployed
    options = dict(output=tmp_path, progress=False, pre_s=120, post_s=300)
    options.update(settings)
    return run_experiment(Settings(**options), aws=server, deployment=deployment,
                          write=lambda text: None)


def _explain(result):
    """The report's own table: what a failing assertion shows, so a flake can be read."""
    from local_emulator.experiment.report import render_table
    return "\n" + render_table(result.report)


def _verdicts(report):
    return {h["hypothesis"]: h for h in report["hypotheses"]}


def test_latency_template_adds_the_configured_latency_and_restores_everything(deployed, tmp_path):
    result = _run(deployed, tmp_path, template="lambda-latency-single-function", time_scale=20,
                  overrides={"S00_AttachExtensionToLambda.LatencyMilliseconds": "4000"})
    report = result.report
    assert report["experiment"]["state"] == "completed", _explain(result)
    assert report["latency_fault"]["latency_ms"] == 4000, _explain(result)
    rise = _verdicts(report)["/hello latency in us-east-1 rose by the injected 4000 ms (±15%)"]
    assert rise["verdict"] == "pass", _explain(result)
    served_us = report["regions"]["us-east-1"]
    assert served_us["pre"]["error_rate"] == served_us["post"]["error_rate"] == 0, _explain(result)
    assert _verdicts(report)["post-experiment back within 10% of steady state"]["verdict"] == "pass", _explain(result)
    assert report["clients"]["us-east-1"]["time_to_failover_s"] is None, _explain(result)  # /health was untouched
    assert result.restored and result.differences == [], _explain(result)
    assert {"report.html", "report.json", "report.txt"} <= {p.name for p in Path(tmp_path).iterdir()}, _explain(result)


def test_regional_outage_fails_over_to_the_healthy_region_and_back(deployed, tmp_path):
    result = _run(deployed, tmp_path, template="lambda-regional-outage", time_scale=20)
    report = result.report
    assert report["experiment"]["state"] == "completed", _explain(result)
    us = report["clients"]["us-east-1"]
    assert us["time_to_failover_s"] is not None, _explain(result)
    assert us["experiment"]["share"].get("eu-west-1", 0) > 0.5, _explain(result)
    assert us["time_to_recovery_s"] is not None, _explain(result)
    last = [r for r in result.records if r["client_region"] == "us-east-1" and r["served_region"]][-10:]
    assert [r["served_region"] for r in last] == ["us-east-1"] * 10, _explain(result)
    assert us["post"]["error_rate"] <= 0.02, _explain(result)
    transitions = report["health_checks"]["us-east-1"]["transitions"]
    assert [healthy for _, healthy in transitions] == [False, True], _explain(result)
    verdicts = _verdicts(report)
    assert verdicts["eu-west-1 clients were unaffected by the fault in us-east-1"]["verdict"] == "pass", _explain(result)
    assert verdicts["us-east-1 clients failed over to a healthy region"]["verdict"] == "pass", _explain(result)
    assert result.restored and result.differences == [], _explain(result)
    # [issue 11 §5] the standard run: every widget of both regions' dashboards drew data from the
    # emulator's CloudWatch, but the layer's own widgets where no fault reached (eu-west-1)
    assert len(report["dashboards"]) == 2, _explain(result)
    assert report["widgets_without_data"] == [], _explain(result)
    assert {g["region"] for g in report["widgets_quiet_by_design"]} <= {"eu-west-1"}, _explain(result)


def test_a_run_stopped_early_by_its_alarm_still_ends_restored(deployed, tmp_path):
    # The blog's bug: us-east-1's health check calls eu-west-1, so us-east-1 never fails over,
    # its customers keep getting errors, and the stop-condition alarm stops the experiment.
    # Scale 10: no failover means a cold start per us-east-1 request for the whole fault (each
    # timed-out invocation resets its environment, as in Lambda), ~130 ms of CPU each; at 30
    # that is 15 a second, more than a busy 2-core machine has (the report then says the
    # emulator did not keep up, and the alarm's data arrives late).
    result = _run(deployed, tmp_path, template="lambda-regional-outage", time_scale=10,
                  health_check_targets={"us-east-1": "eu-west-1"}, post_s=120)
    experiment = result.report["experiment"]
    assert experiment["state"] == "stopped", _explain(result)
    assert "entered ALARM state" in experiment["reason"], _explain(result)
    [action] = experiment["actions"].values()
    automation = action["automation"]
    assert action["state"] == "stopped" and automation["status"] == "Cancelled", _explain(result)
    steps = {s["name"]: s["status"] for s in automation["steps"]}
    assert steps["HandOffDetach"] == "Success", _explain(result)  # the cancel handed off the detach
    [detach] = automation["handed_off"]
    assert detach["status"] == "Success", _explain(result)
    assert experiment["end"] - experiment["start"] < 600, _explain(result)  # stopped before the 10-minute fault ended
    assert result.report["alarm"]["fired"], _explain(result)
    assert result.report["clients"]["us-east-1"]["time_to_failover_s"] is None, _explain(result)
    assert result.restored and result.differences == [], _explain(result)
    saved = json.loads((Path(tmp_path) / "report.json").read_text())
    assert saved["configurations"]["restored"] is True, _explain(result)


def test_every_regions_dashboard_shows_every_regions_health_check(deployed):
    # deploy.sh reads the other regions' health checks from their stacks, so the region
    # deployed first could not see the later ones; discover() completes each dashboard.
    server, deployment = deployed
    checks = {r: deployment.regions[r].outputs["HealthCheckId"] for r in REGIONS}
    for region in REGIONS:
        name = deployment.regions[region].outputs["DashboardName"]
        body = json.loads(server.client("cloudwatch", region).get_dashboard(
            DashboardName=name)["DashboardBody"])
        [health] = [w for w in body["widgets"] if "HealthCheckStatus" in w["properties"].get("title", "")]
        shown = {m[3] for m in health["properties"]["metrics"]}
        assert shown == set(checks.values()), f"{region}'s dashboard shows {shown}, not {checks}"


ORGANIZATION_TEMPLATE = "lambda-organization-outage"


def _only_action(template_name):
    """The template's one action (its documentParameters take the overrides)."""
    [name] = json.loads((ROOT / "fis_templates" / template_name / "template.json").read_text())["actions"]
    return name


def test_an_organisation_wide_outage_attaches_in_both_accounts_and_restores_each_exactly(deployed, tmp_path):
    # [issue 12 §4] us-east-1 of the central account (the sample app) and of a second account
    # (a fleet of two tagged functions), one child automation per location and mode. A 3-minute
    # fault and short phases keep the run itself to about a minute here.
    action = _only_action(ORGANIZATION_TEMPLATE)
    result = _run(deployed, tmp_path, template=ORGANIZATION_TEMPLATE, time_scale=20, pre_s=60,
                  post_s=120, overrides={f"{action}.Duration": "PT3M"})
    report = result.report
    assert report["experiment"]["state"] == "completed", _explain(result)
    locations = {(row["account"], row["region"]): row for row in report["locations"]}
    for account in (DEFAULT_ACCOUNT, TARGET_ACCOUNT):
        here = locations[(account, "us-east-1")]
        assert (here["attach"]["status"], here["attach"]["functions"]) == ("Success", 2), _explain(result)
        assert (here["detach"]["status"], here["detach"]["functions"]) == ("Success", 2), _explain(result)
        assert here["attach"]["end"] < here["detach"]["end"], _explain(result)
        assert here["restored"] is True, _explain(result)
    assert locations[(DEFAULT_ACCOUNT, "eu-west-1")]["attach"] is None, _explain(result)  # not a target
    functions = report["configurations"]["functions"]
    assert f"{TARGET_ACCOUNT}/us-east-1/orders-hello" in functions, _explain(result)
    assert any(f.startswith(f"{DEFAULT_ACCOUNT}/us-east-1/") for f in functions), _explain(result)
    assert report["clients"]["us-east-1"]["time_to_failover_s"] is not None, _explain(result)
    assert result.restored and result.differences == [], _explain(result)
    assert "Per account and Region" in (Path(tmp_path) / "report.txt").read_text(), _explain(result)
