"""The report of an organisation-wide run shows each account and Region: its attach and
detach child automations (status, functions changed, when each returned) and whether every
function there was restored exactly. A single-account run's report has no such section."""
from types import SimpleNamespace

from local_emulator.experiment.locations import location_rows, locations_html, render_locations
from local_emulator.experiment.report import build_report, render_html, render_table
from tests.test_report import PHASES, _outage_records, _report

CENTRAL, TARGET = "123456789012", "111111111111"


def _step(name, count, status="Success"):
    return SimpleNamespace(name=name, status=status, outputs={"TargetCount": count})


def _child(account, mode, start, end, steps, status="Success", region="us-east-1"):
    """An AutomationExecution of the fault document in one location, as the service keeps it."""
    return SimpleNamespace(account_id=account, region=region, parameters={"ChaosMode": mode},
                           status=status, start_time=start, end_time=end, steps=steps,
                           execution_id=f"{account}-{mode}")


SNAPSHOT = {f"{CENTRAL}/us-east-1/hello": {}, f"{CENTRAL}/us-east-1/health": {},
            f"{CENTRAL}/us-east-1/simulator": {}, f"{CENTRAL}/eu-west-1/hello": {},
            f"{TARGET}/us-east-1/orders-health": {}, f"{TARGET}/us-east-1/orders-hello": {}}
CHILDREN = [
    _child(CENTRAL, "ENABLED", 101.0, 140.25, [_step("Plan", 2), _step("ApplyBatch", 2)]),
    _child(TARGET, "ENABLED", 101.0, 138.0, [_step("Plan", 2), _step("ApplyBatch", 2)]),
    _child(CENTRAL, "DISABLED", 180.0, 199.5, [_step("Plan", 2), _step("ApplyBatch", 2)]),
    _child(TARGET, "DISABLED", 180.0, 197.0, [_step("ApplyBatch", 1), _step("ApplyBatch", 1)]),
]


def _rows(differences=()):
    return location_rows(CHILDREN, SNAPSHOT, list(differences))


def test_each_location_has_its_attach_and_detach_child_the_functions_each_changed_and_when_it_returned():
    rows = {(r["account"], r["region"]): r for r in _rows()}
    target = rows[(TARGET, "us-east-1")]
    assert target["attach"] == {"execution_id": f"{TARGET}-ENABLED", "status": "Success", "functions": 2,
                                "rolled_back": 0, "start": 101.0, "end": 138.0}
    assert target["detach"]["functions"] == 2 and target["detach"]["end"] == 197.0  # two batches of 1
    assert rows[(CENTRAL, "us-east-1")]["attach"]["end"] == 140.2
    assert target["functions"] == 2 and target["restored"] is True


def test_a_location_with_a_function_left_changed_is_not_restored_and_the_others_still_are():
    rows = {(r["account"], r["region"]): r for r in _rows(
        [f"{TARGET}/us-east-1/orders-hello: configuration.Layers: [] → [\"chaos\"]",
         f"{TARGET}/us-east-1/orders-hello: configuration.Environment.Variables.X: absent → \"1\""])}
    assert rows[(TARGET, "us-east-1")]["restored"] is False
    assert rows[(TARGET, "us-east-1")]["changed"] == 1
    assert rows[(CENTRAL, "us-east-1")]["restored"] is True


def test_a_failed_attach_that_rolled_back_counts_what_it_rolled_back():
    failed = _child(TARGET, "ENABLED", 101.0, 130.0,
                    [_step("ApplyBatch", 2), _step("ApplyBatch", 2, status="Failed"),
                     _step("RollBackBatch", 2)], status="Failed")
    [row] = [r for r in location_rows([failed], SNAPSHOT, []) if r["account"] == TARGET]
    assert row["attach"]["status"] == "Failed"
    assert (row["attach"]["functions"], row["attach"]["rolled_back"]) == (2, 2)
    assert "Failed  2 (rolled back 2)  130 s" in "\n".join(render_locations([row]))


def test_the_table_prints_each_location_and_names_one_no_child_ran_in():
    lines = render_locations(_rows([f"{TARGET}/us-east-1/orders-hello: configuration.Layers: [] → [1]"]))
    assert lines[0].startswith("Per account and Region")
    text = "\n".join(lines)
    assert f"{TARGET}  us-east-1  Success  2         138 s     Success  2         197 s     NO: 1 of 2 functions differ" in text
    assert f"{CENTRAL}  us-east-1  Success  2         140.2 s   Success  2         199.5 s   yes, all 3 functions" in text
    assert f"{CENTRAL}  eu-west-1  —" in text and "yes, all 1 function (not a target location)" in text


def test_the_report_carries_the_locations_into_its_json_table_and_page():
    report = _report(_outage_records(), locations=_rows())
    assert [(r["account"], r["region"]) for r in report["locations"]] == [
        (TARGET, "us-east-1"), (CENTRAL, "eu-west-1"), (CENTRAL, "us-east-1")]
    assert "\n".join(render_locations(report["locations"])) in render_table(report)
    page = render_html(report, [])
    assert "<h2>Per account and Region</h2>" in page
    assert f"<td>{TARGET}</td><td>us-east-1</td><td>Success</td><td>2</td><td>138 s</td>" in page


def test_a_single_account_report_has_no_per_location_section():
    report = _report(_outage_records())
    assert report["locations"] == []
    assert "Per account and Region" not in render_table(report)
    assert "Per account and Region" not in render_html(report, [])
    assert locations_html([]) == [] and render_locations([]) == []
