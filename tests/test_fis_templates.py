"""The FIS templates, rendered exactly as deploy.sh renders them, are valid FIS requests.

moto's FIS accepts anything, so the reference here is botocore's own `fis` service model plus
the checks in cloudformation.fis_validation (lengths, patterns, action ids and parameters,
durations, startAfter, the SSM documents' declared parameters) and the toolkit's safety rules.
"""
import copy
import json
import math
import re

import pytest
import regex

from chaos_layer import config
from cloudformation import fis, fis_validation
from cloudformation.documents import parameter_specs
from cloudformation.errors import MissingValueError
from tests.fis_fixtures import stack_outputs

NAMES = fis.template_names()
ORGANIZATION = "lambda-organization-outage"
TARGET_ACCOUNTS = ("111111111111", "222222222222")
TARGET_REGIONS = ("us-east-1", "eu-west-1")


def _outputs():
    """The toolkit stack's outputs when deployed with --target-accounts: stack_outputs() plus
    the organisation document and the organisation run's accounts, Regions, layer name and
    execution role."""
    values = stack_outputs()
    head = values["ExperimentDocumentArn"].rsplit("-LambdaFaultExperiment", 1)[0]
    return dict(values, OrganizationDocumentArn=f"{head}-LambdaFaultOrganization",
                TargetAccounts=",".join(TARGET_ACCOUNTS), TargetRegions=",".join(TARGET_REGIONS),
                TargetLayerName="lambda-chaos-layer",
                ExecutionRoleName="LambdaChaosAutomationExecution")


def _documents(values):
    return {values["FaultDocumentArn"]: parameter_specs("FaultDocument"),
            values["ExperimentDocumentArn"]: parameter_specs("ExperimentDocument"),
            values["OrganizationDocumentArn"]: parameter_specs("OrganizationDocument")}


def _rendered(name, values=None):
    values = values or _outputs()
    return fis.render_request(fis.load_template(name), values, name=name)


def _problems(request, values=None):
    return fis_validation.validate_request(request, _documents(values or _outputs()))


def _house(request):
    values = _outputs()
    return fis_validation.house_rules(request, frozenset({values["FaultDocumentArn"]}),
                                      frozenset({values["ExperimentDocumentArn"],
                                                 values["OrganizationDocumentArn"]}))


def test_the_four_templates_exist():
    assert NAMES == ["lambda-invocation-errors", "lambda-latency-single-function",
                     ORGANIZATION, "lambda-regional-outage"]


@pytest.mark.parametrize("name", NAMES)
def test_rendered_template_validates_against_botocore_fis_model(name):
    assert _problems(_rendered(name)) == []


@pytest.mark.parametrize("name", NAMES)
def test_rendered_template_follows_the_house_safety_rules(name):
    assert _house(_rendered(name)) == []


@pytest.mark.parametrize("name", NAMES)
def test_every_placeholder_is_a_known_deploy_value(name):
    assert fis.placeholders_in(fis.load_template(name)) <= set(fis.PLACEHOLDERS)


@pytest.mark.parametrize("name", NAMES)
def test_every_folder_has_readme_and_policy(name):
    folder = fis.TEMPLATES_DIR / name
    readme = (folder / "README.md").read_text()
    for heading in ("Hypothesis", "Prerequisites", "Stop conditions", "When stopped"):
        assert heading in readme, f"{name}/README.md lacks a '{heading}' section"
    policy = fis.load_policy(name)
    assert policy["Version"] == "2012-10-17"


@pytest.mark.parametrize("name", NAMES)
def test_fault_settings_passed_by_templates_are_ones_the_layer_understands(name):
    for action in _rendered(name)["actions"].values():
        params = fis.document_parameters(action)
        if "FaultType" in params:
            assert params["FaultType"] in config.FAULT_TYPES
        if "InvocationPercentage" in params:
            assert 0 < float(params["InvocationPercentage"]) <= 100


def test_latency_template_keeps_the_blog_sequence():
    actions = _rendered("lambda-latency-single-function")["actions"]
    assert list(actions) == ["S00_AttachExtensionToLambda", "S01_Wait",
                             "S02_DetachExtensionFromLambda"]
    assert fis.document_parameters(actions["S00_AttachExtensionToLambda"])["ChaosMode"] == "ENABLED"
    assert actions["S01_Wait"]["parameters"] == {"duration": "PT10M"}
    assert actions["S01_Wait"]["startAfter"] == ["S00_AttachExtensionToLambda"]
    detach = fis.document_parameters(actions["S02_DetachExtensionFromLambda"])
    assert detach["ChaosMode"] == "DISABLED"
    assert actions["S02_DetachExtensionFromLambda"]["startAfter"] == ["S01_Wait"]


def test_regional_outage_latency_exceeds_api_gateway_integration_timeout():
    (action,) = _rendered("lambda-regional-outage")["actions"].values()
    params = fis.document_parameters(action)
    assert int(params["LatencyMilliseconds"]) > 29_000
    assert params["TargetTagKey"] and params["TargetSelection"] == "ALL"


def test_invocation_errors_template_injects_errors_at_a_percentage():
    (action,) = _rendered("lambda-invocation-errors")["actions"].values()
    params = fis.document_parameters(action)
    assert params["FaultType"] == "error" and 0 < float(params["InvocationPercentage"]) < 100


def test_tag_targeted_templates_use_the_one_execution_experiment_document():
    values = _outputs()
    for name in ("lambda-regional-outage", "lambda-invocation-errors"):
        for action in _rendered(name)["actions"].values():
            assert action["parameters"]["documentArn"] == values["ExperimentDocumentArn"]


def test_missing_value_names_the_placeholder_and_the_fix():
    values = _outputs()
    del values["StopAlarmArn"]
    with pytest.raises(MissingValueError, match=r"\$\{StopAlarmArn\}.*StopAlarmArn=VALUE"):
        _rendered("lambda-regional-outage", values)


def test_cloudformation_rendering_says_the_same_as_the_api_rendering():
    from cloudformation.stack import LIST_ITEM_SEPARATOR
    values = _outputs()
    # CloudFormation joins a list parameter with '","' (stack.CFN_VALUES); the renderer splits
    # the comma-separated value into items: both give the same JSON list.
    joined = {key: (value.replace(",", LIST_ITEM_SEPARATOR) if key in fis.LIST_PLACEHOLDERS
                    else value) for key, value in values.items()}
    cfn_values = {key: {"Ref": key} for key in fis.PLACEHOLDERS}
    for name in NAMES:
        template = fis.load_template(name)
        cfn = fis.resolve_cloudformation(fis.to_cloudformation(template, cfn_values), joined)
        api = fis.render_request(template, values, name=name)
        assert cfn["Description"] == api["description"]
        assert cfn["LogConfiguration"]["CloudWatchLogsConfiguration"]["LogGroupArn"] == \
            api["logConfiguration"]["cloudWatchLogsConfiguration"]["logGroupArn"]
        for action_name, action in api["actions"].items():
            assert cfn["Actions"][action_name]["Parameters"] == action["parameters"]
            assert cfn["Actions"][action_name]["ActionId"] == action["actionId"]
        assert cfn["Tags"] == api["tags"]
        report, api_report = cfn["ExperimentReportConfiguration"], api["experimentReportConfiguration"]
        s3 = report["Outputs"]["ExperimentReportS3Configuration"]
        assert {"bucketName": s3["BucketName"], "prefix": s3["Prefix"]} == \
            api_report["outputs"]["s3Configuration"]
        assert report["DataSources"]["CloudWatchDashboards"][0]["DashboardIdentifier"] == \
            api_report["dataSources"]["cloudWatchDashboards"][0]["dashboardIdentifier"]
        assert (report["PreExperimentDuration"], report["PostExperimentDuration"]) == \
            (api_report["preExperimentDuration"], api_report["postExperimentDuration"])


# --- the validator itself must catch what it claims to catch --------------------------------

def _broken(mutate):
    request = copy.deepcopy(_rendered("lambda-latency-single-function"))
    mutate(request)
    return _problems(request)


def test_validator_rejects_description_longer_than_model_maximum():
    problems = _broken(lambda r: r.update(description="x" * 513))
    assert any("description: 513 characters, more than the 512" in p for p in problems)


def test_validator_rejects_action_parameter_longer_than_1024_characters():
    def mutate(r):
        params = r["actions"]["S00_AttachExtensionToLambda"]["parameters"]
        doc = json.loads(params["documentParameters"])
        doc["ErrorMessage"] = "e" * 1100
        params["documentParameters"] = json.dumps(doc)
    assert any("more than the 1024 allowed" in p for p in _broken(mutate))


def test_validator_rejects_missing_required_member():
    assert any("roleArn" in p for p in _broken(lambda r: r.pop("roleArn")))


def test_validator_rejects_unknown_action_id():
    def mutate(r):
        r["actions"]["S01_Wait"]["actionId"] = "aws:fis:sleep"
    assert any("actionId 'aws:fis:sleep' is not one of" in p for p in _broken(mutate))


def test_validator_rejects_misspelt_action_parameter():
    def mutate(r):
        params = r["actions"]["S00_AttachExtensionToLambda"]["parameters"]
        params["maxduration"] = params.pop("maxDuration")
    problems = _broken(mutate)
    assert any("'maxDuration' is required" in p for p in problems)
    assert any("'maxduration' is not a parameter" in p for p in problems)


def test_validator_rejects_durations_that_are_not_iso8601_or_out_of_range():
    def mutate(r):
        r["actions"]["S01_Wait"]["parameters"]["duration"] = "10 minutes"
        r["actions"]["S00_AttachExtensionToLambda"]["parameters"]["maxDuration"] = "PT13H"
    problems = _broken(mutate)
    assert any("'10 minutes' is not an ISO-8601 duration" in p for p in problems)
    assert any("PT13H is outside FIS's range" in p for p in problems)


def test_validator_rejects_start_after_naming_no_action_and_cycles():
    def mutate(r):
        r["actions"]["S01_Wait"]["startAfter"] = ["S00_Attach"]
    assert any("'S00_Attach', which is not an action" in p for p in _broken(mutate))

    def cycle(r):
        r["actions"]["S00_AttachExtensionToLambda"]["startAfter"] = ["S02_DetachExtensionFromLambda"]
    assert any("cycle" in p for p in _broken(cycle))


def test_validator_rejects_document_parameter_the_document_does_not_declare():
    def mutate(r):
        params = r["actions"]["S00_AttachExtensionToLambda"]["parameters"]
        doc = json.loads(params["documentParameters"])
        doc["LatencyMs"] = doc.pop("LatencyMilliseconds")
        params["documentParameters"] = json.dumps(doc)
    assert any("'LatencyMs', which the document does not declare" in p for p in _broken(mutate))


def test_validator_rejects_experiment_options_value_outside_enum():
    def mutate(r):
        r["experimentOptions"]["emptyTargetResolutionMode"] = "ignore"
    assert any("'ignore' is not one of fail, skip" in p for p in _broken(mutate))


def test_house_rules_refuse_attach_without_expiry():
    values = _outputs()
    request = _rendered("lambda-latency-single-function")
    params = request["actions"]["S00_AttachExtensionToLambda"]["parameters"]
    doc = json.loads(params["documentParameters"])
    del doc["Duration"]
    params["documentParameters"] = json.dumps(doc)
    problems = fis_validation.house_rules(request, frozenset({values["FaultDocumentArn"]}),
                                          frozenset({values["ExperimentDocumentArn"]}))
    assert problems == ["actions.S00_AttachExtensionToLambda: an attach must set Duration so "
                        "the fault expires by itself"]


def test_house_rules_refuse_experiment_whose_max_duration_would_cut_the_detach():
    values = _outputs()
    request = _rendered("lambda-regional-outage")
    request["actions"]["RegionalLatencyOutage"]["parameters"]["maxDuration"] = "PT12M"
    problems = fis_validation.house_rules(request, frozenset({values["FaultDocumentArn"]}),
                                          frozenset({values["ExperimentDocumentArn"]}))
    assert problems == ["actions.RegionalLatencyOutage: maxDuration PT12M must exceed "
                        "Duration PT10M by 5 minutes"]


def test_validator_rejects_values_the_document_would_refuse():
    def mutate(r):
        params = r["actions"]["S00_AttachExtensionToLambda"]["parameters"]
        doc = json.loads(params["documentParameters"])
        doc.update(FaultType="slow", LatencyMilliseconds="60s", Duration="15 minutes")
        params["documentParameters"] = json.dumps(doc)
    problems = _broken(mutate)
    assert any("FaultType='slow' is not one of ['latency', 'error', 'response']" in p
               for p in problems)
    assert any("LatencyMilliseconds='60s' is not an Integer" in p for p in problems)
    assert any("Duration='15 minutes' does not match the document's" in p for p in problems)


def test_validator_rejects_experiment_without_the_documents_required_duration():
    request = copy.deepcopy(_rendered("lambda-regional-outage"))
    params = request["actions"]["RegionalLatencyOutage"]["parameters"]
    doc = json.loads(params["documentParameters"])
    del doc["Duration"]
    params["documentParameters"] = json.dumps(doc)
    assert any("lacks 'Duration', which the document requires" in p for p in _problems(request))


def test_readme_placeholder_table_matches_the_renderer():
    readme = (fis.TEMPLATES_DIR / "README.md").read_text()
    table = set(re.findall(r"^\| `\$\{(\w+)\}`(?:, `\$\{(\w+)\}`)? \|", readme, re.M))
    named = {name for row in table for name in row if name}
    assert named == set(fis.PLACEHOLDERS)


def test_readme_lists_every_template_folder_in_both_tables():
    readme = (fis.TEMPLATES_DIR / "README.md").read_text()
    for name in NAMES:
        assert readme.count(f"`{name}`") >= 2, name


@pytest.mark.parametrize("name", NAMES)
def test_policy_placeholders_are_ones_the_stack_fills(name):
    from cloudformation import stack
    assert fis.placeholders_in(fis.load_policy(name)) <= set(fis.POLICY_PLACEHOLDERS)
    assert set(stack.POLICY_VALUES) == set(fis.POLICY_PLACEHOLDERS)


@pytest.mark.parametrize("name", NAMES)
def test_readme_states_the_durations_the_template_uses(name):
    readme = (fis.TEMPLATES_DIR / name / "README.md").read_text()
    for action in fis.load_template(name)["actions"].values():
        params = action["parameters"]
        for value in filter(None, [params.get("duration"),
                                   fis.document_parameters(action).get("Duration")]):
            assert f"`{value}`" in readme or f"={value}`" in readme, f"{name}: {value}"


# --- experiment reports ----------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_every_template_reports_to_the_stacks_bucket_with_the_apps_dashboard(name):
    values = _outputs()
    report = _rendered(name)["experimentReportConfiguration"]
    assert report["outputs"]["s3Configuration"] == {"bucketName": values["ReportBucketName"],
                                                    "prefix": f"experiment-reports/{name}"}
    assert report["dataSources"] == {"cloudWatchDashboards": [
        {"dashboardIdentifier": values["DashboardArn"]}]}


@pytest.mark.parametrize("name", NAMES)
def test_without_a_dashboard_the_report_leaves_out_its_data_sources_and_stays_valid(name):
    values = dict(_outputs(), DashboardArn="")
    request = _rendered(name, values)
    assert "dataSources" not in request["experimentReportConfiguration"]
    assert request["experimentReportConfiguration"]["outputs"]["s3Configuration"]["bucketName"]
    assert _problems(request, values) == []


@pytest.mark.parametrize("name", NAMES)
def test_readme_says_why_the_report_windows_suit_the_template(name):
    readme = (fis.TEMPLATES_DIR / name / "README.md").read_text()
    report = fis.load_template(name)["experimentReportConfiguration"]
    section = readme.split("## Experiment report", 1)[1].split("\n## ", 1)[0]
    for key in ("preExperimentDuration", "postExperimentDuration"):
        assert f"`{key}` `{report[key]}`" in section, (name, key)


def test_templates_windows_differ_as_their_faults_do():
    windows = {n: (fis.load_template(n)["experimentReportConfiguration"]["preExperimentDuration"],
                   fis.load_template(n)["experimentReportConfiguration"]["postExperimentDuration"])
               for n in NAMES}
    # the fault may outlive a stopped single-function experiment by its 15-minute expiry
    assert windows["lambda-latency-single-function"][1] == "PT15M"
    assert windows["lambda-invocation-errors"] == ("PT5M", "PT5M")


def test_house_rules_refuse_a_template_without_a_report():
    request = _rendered("lambda-regional-outage")
    del request["experimentReportConfiguration"]
    assert _house(request) == ["experimentReportConfiguration: every template needs an experiment "
                               "report (S3 output, durations)"]


def test_house_rules_refuse_report_windows_outside_one_to_30_minutes_or_not_iso8601():
    request = _rendered("lambda-regional-outage")
    request["experimentReportConfiguration"].update(preExperimentDuration="PT45M",
                                                    postExperimentDuration="10 minutes")
    assert _house(request) == [
        "experimentReportConfiguration.preExperimentDuration: PT45M is outside one to 30 minutes",
        "experimentReportConfiguration.postExperimentDuration: '10 minutes' is not an ISO-8601 "
        "duration such as PT10M"]


def test_validator_rejects_a_report_bucket_name_botocore_would_refuse():
    def mutate(r):
        r["experimentReportConfiguration"]["outputs"]["s3Configuration"]["bucketName"] = "ab"
    assert any("bucketName" in p and "min" in p.lower() for p in _broken(mutate)), _broken(mutate)


def _documented_report_permissions():
    readme = (fis.TEMPLATES_DIR / "README.md").read_text()
    section = readme.split("## Experiment reports", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z0-9]+:[A-Za-z]+)` \|", section, re.M))


@pytest.mark.parametrize("name", NAMES)
def test_report_permissions_in_each_policy_equal_the_documented_list(name):
    documented = _documented_report_permissions()
    assert documented == {"cloudwatch:GetDashboard", "cloudwatch:GetMetricWidgetImage",
                          "s3:PutObject", "s3:GetObject"}
    granted = set()
    for statement in fis.load_policy(name)["Statement"]:
        if statement["Sid"].startswith("Report"):
            actions = statement["Action"]
            granted |= {actions} if isinstance(actions, str) else set(actions)
    assert granted == documented


# --- the organisation-wide outage ------------------------------------------------------------

def _organization_readme():
    """The organisation template's README, its line breaks as spaces."""
    return " ".join((fis.TEMPLATES_DIR / ORGANIZATION / "README.md").read_text().split())


def _organization_action(values=None):
    (action,) = _rendered(ORGANIZATION, values)["actions"].values()
    return action


def test_organization_template_starts_the_organization_document_in_every_location():
    values = _outputs()
    action = _organization_action()
    assert action["actionId"] == "aws:ssm:start-automation-execution"
    assert action["parameters"]["documentArn"] == values["OrganizationDocumentArn"]
    params = fis.document_parameters(action)
    assert params["TargetAccounts"] == list(TARGET_ACCOUNTS)
    assert params["TargetRegions"] == list(TARGET_REGIONS)
    assert params["ExecutionRoleName"] == values["ExecutionRoleName"]
    assert params["TargetTagKey"] == values["TargetTagKey"]
    assert params["TargetTagValue"] == values["TargetTagValue"]
    assert params["TargetSelection"] == "ALL" and params["FaultType"] == "latency"
    assert int(params["LatencyMilliseconds"]) > 29_000 and params["Duration"] == "PT10M"


def test_organization_template_passes_only_declared_parameters_and_every_required_one():
    specs = parameter_specs("OrganizationDocument")
    params = fis.document_parameters(_organization_action())
    assert set(params) <= set(specs), set(params) - set(specs)
    required = {name for name, spec in specs.items() if "default" not in spec}
    assert required == {"Duration", "TargetAccounts", "TargetRegions"}  # what the document says
    assert required <= set(params)


def test_organization_template_values_pass_the_documents_allowed_patterns_and_values():
    specs = parameter_specs("OrganizationDocument")
    for name, value in fis.document_parameters(_organization_action()).items():
        spec = specs[name]
        items = value if isinstance(value, list) else [value]
        assert isinstance(value, list) == (spec["type"] == "StringList"), name
        for item in items:
            if "allowedValues" in spec:
                assert item in [str(v) for v in spec["allowedValues"]], (name, item)
            if "allowedPattern" in spec:
                assert regex.search(spec["allowedPattern"], item), (name, item)
            if spec["type"] == "Integer":
                assert re.fullmatch(r"\d+", item), (name, item)
    assert _problems(_rendered(ORGANIZATION)) == []


def test_organization_template_gives_the_layer_as_a_name_each_location_resolves():
    params = fis.document_parameters(_organization_action())
    assert params["LayerArn"] == "lambda-chaos-layer"
    assert not params["LayerArn"].startswith("arn:")  # a version ARN names one account's layer
    pattern = parameter_specs("OrganizationDocument")["LayerArn"]["allowedPattern"]
    assert regex.search(pattern, params["LayerArn"])


def test_organization_template_is_all_or_nothing_across_locations_at_once():
    params = fis.document_parameters(_organization_action())
    assert params["TargetLocationMaxErrors"] == "0"
    assert params["TargetLocationMaxConcurrency"] == "100%"


def test_organization_template_is_one_single_account_experiment_without_targets():
    request = _rendered(ORGANIZATION)
    assert request["targets"] == {} and len(request["actions"]) == 1
    assert request["experimentOptions"]["accountTargeting"] == "single-account"


# What one location's attach (or detach) costs beyond its Lambda calls: SSM starting the child
# automation in the account, its Plan step and step transitions (the README's 3 minutes).
LOCATION_OVERHEAD_S = 180
CALLS_PER_FUNCTION_WITH_ALIAS = 7  # ssm_documents/README.md, "Measured": the costlier case


def _waves(concurrency, locations):
    """How many rounds of locations SSM runs at TargetLocationMaxConcurrency."""
    if concurrency.endswith("%"):
        at_once = max(1, math.floor(locations * int(concurrency[:-1]) / 100))
    else:
        at_once = int(concurrency)
    return math.ceil(locations / at_once)


def test_organization_max_duration_covers_attach_and_detach_in_every_location_plus_duration():
    action = _organization_action()
    params = fis.document_parameters(action)
    locations = len(params["TargetAccounts"]) * len(params["TargetRegions"])
    one_way = (int(params["MaxTargets"]) * CALLS_PER_FUNCTION_WITH_ALIAS
               / int(params["RequestsPerSecond"]) + LOCATION_OVERHEAD_S)
    needed = (fis_validation.parse_duration(params["Duration"]).total_seconds()
              + 2 * _waves(params["TargetLocationMaxConcurrency"], locations) * one_way)
    budget = fis_validation.parse_duration(action["parameters"]["maxDuration"]).total_seconds()
    assert (one_way, needed) == (250, 1100)  # the figures its README gives
    assert needed <= budget <= fis_validation.MAX_DURATION.total_seconds()
    readme = _organization_readme()
    assert "`maxDuration` `PT30M`" in readme and "**1,100 s" in readme and "**250 s**" in readme


def test_house_rules_refuse_an_organization_max_duration_that_would_cut_the_detach():
    request = _rendered(ORGANIZATION)
    request["actions"]["OrganizationLatencyOutage"]["parameters"]["maxDuration"] = "PT14M"
    assert _house(request) == ["actions.OrganizationLatencyOutage: maxDuration PT14M must exceed "
                               "Duration PT10M by 5 minutes"]


def test_organization_policy_starts_exactly_the_organization_document_and_passes_the_automation_role():
    policy = fis.load_policy(ORGANIZATION)
    (start,) = [s for s in policy["Statement"] if s["Action"] == "ssm:StartAutomationExecution"]
    assert start["Resource"] == [
        "arn:${Partition}:ssm:${Region}:${AccountId}:document/${OrganizationDocumentName}",
        "arn:${Partition}:ssm:${Region}:${AccountId}:automation-definition/${OrganizationDocumentName}:*"]
    (passing,) = [s for s in policy["Statement"] if s["Action"] == "iam:PassRole"]
    assert passing["Resource"] == "${AutomationRoleArn}"
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "ssm.amazonaws.com"}}
    (follow,) = [s for s in policy["Statement"] if s["Sid"] == "FollowAndStopTheExecution"]
    assert set(follow["Action"]) == {"ssm:GetAutomationExecution", "ssm:StopAutomationExecution"}
    # the role the policy lets FIS pass is the one the automation is told to assume
    values = _outputs()
    assert fis.document_parameters(_organization_action())["AutomationAssumeRole"] == \
        values["AutomationRoleArn"]
    assert "${AutomationRoleArn}" in fis.load_template(ORGANIZATION)["actions"][
        "OrganizationLatencyOutage"]["parameters"]["documentParameters"]


def test_organization_template_needs_target_accounts_and_the_others_do_not():
    values = stack_outputs()  # a stack deployed without --target-accounts
    unmet = {name: fis.unmet_requirements(fis.load_template(name), values) for name in NAMES}
    assert unmet == {"lambda-invocation-errors": [], "lambda-latency-single-function": [],
                     ORGANIZATION: ["TargetAccounts"], "lambda-regional-outage": []}


def test_document_parameters_list_placeholder_becomes_one_item_per_value():
    template = {"actions": {"A": {"parameters": {
        "documentParameters": "{\"TargetAccounts\": [\"${TargetAccounts}\"], \"Other\": \"${TargetAccounts}\"}"}}}}
    rendered = fis.render_request(template, {"TargetAccounts": "111111111111, ou-ab12-cdef3456"})
    assert fis.document_parameters(rendered["actions"]["A"]) == {
        "TargetAccounts": ["111111111111", "ou-ab12-cdef3456"],
        "Other": "111111111111, ou-ab12-cdef3456"}  # only a lone list item is split
    with pytest.raises(MissingValueError, match=r"\$\{TargetAccounts\}"):
        fis.render_request(template, {})


def test_organization_document_parameters_leave_room_for_accounts_within_fis_1024_characters():
    """The README's figure: how many 12-digit accounts still fit the action parameter."""
    values = _outputs()
    fits = 0
    for count in range(1, 200):
        accounts = ",".join(str(100000000000 + i) for i in range(count))
        text = _organization_action(dict(values, TargetAccounts=accounts))["parameters"][
            "documentParameters"]
        if len(text) > 1024:
            break
        fits = count
    assert fits >= 25, fits
    assert "at least 25 account ids" in _organization_readme()
