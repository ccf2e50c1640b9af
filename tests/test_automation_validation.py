"""Every refusal happens before anything changes, and names the function, the reason and the fix."""
import pytest
from moto import mock_aws

import automation_handler as ah
from automation_fixtures import Lab, publish_layer, role_arn
from chaos_layer import config


@pytest.fixture
def lab():
    with mock_aws():
        yield Lab()


def refuse(lab, error, match, **params):
    names = [n.strip() for n in params.get("FunctionName", "").split(",") if n.strip()]
    before = {n: lab.snapshot(n) for n in names if n != "missing"}
    with pytest.raises(error, match=match):
        ah.attach(lab.params(**params), lab.aws)
    assert {n: lab.snapshot(n) for n in before} == before
    assert "UpdateFunctionConfiguration" not in lab.gaps.operations()


def test_attach_refuses_missing_function_naming_it_and_the_region(lab):
    lab.function("orders")
    refuse(lab, ah.TargetNotFound, r"function 'missing' does not exist in us-east-1",
           FunctionName="orders,missing")


def test_attach_refuses_container_image_function(lab):
    lab.gaps.raw.create_function(FunctionName="img", Role=role_arn(), PackageType="Image",
                                 Code={"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/"
                                                   "app:latest"})
    refuse(lab, ah.TargetRefused, r"function img is a container image.*zip-packaged",
           FunctionName="img")


@pytest.mark.parametrize("runtime", ["nodejs20.x", "python3.8"])
def test_attach_refuses_runtime_the_layer_does_not_support(lab, runtime):
    lab.function("legacy", runtime=runtime, alias=None)
    refuse(lab, ah.TargetRefused, rf"function legacy runs {runtime}.*upgrade", FunctionName="legacy")


def test_attach_refuses_runtime_missing_from_the_layer_versions_compatible_runtimes(lab):
    lab.function("orders", runtime="python3.13", alias=None)
    refuse(lab, ah.TargetRefused, r"orders runs python3.13; the layer supports python3.12, "
                                  r"python3.11", FunctionName="orders")


def test_attach_refuses_architecture_the_layer_version_does_not_declare(lab):
    lab.layer = publish_layer(lab.gaps.raw, "lambda-chaos", architectures=("x86_64",))
    lab.function("graviton", architecture="arm64", alias=None)
    refuse(lab, ah.TargetRefused, r"graviton runs on arm64.*declares x86_64",
           FunctionName="graviton")


def test_attach_refuses_a_sixth_layer_naming_the_existing_ones(lab):
    lab.function("full", layers=lab.other_layers + [publish_layer(lab.gaps.raw, "fifth")])
    refuse(lab, ah.TargetRefused, r"full already has 5 layers.*remove one of", FunctionName="full")


def test_attach_refuses_an_environment_that_would_exceed_4_kb(lab):
    lab.function("big", env={"BLOB": "x" * 3600})
    refuse(lab, ah.TargetRefused, r"big: its environment would be \d+ bytes.*over Lambda's 4096",
           FunctionName="big")


def test_environment_size_is_the_json_of_the_variables_map():
    assert ah.environment_size({"A": "1"}) == len('{"A":"1"}')
    assert ah.environment_size({"É": "ü"}) == len('{"É":"ü"}'.encode())


def test_attach_refuses_a_function_in_a_different_experiment(lab):
    lab.function("orders")
    ah.attach(lab.params(FunctionName="orders"), lab.aws)
    calls = len(lab.gaps.calls)
    with pytest.raises(ah.TargetRefused, match=r"orders is in a different experiment \(lc-.*"
                                               r"detach it first"):
        ah.attach(lab.params(FunctionName="orders", FaultType="error"), lab.aws)
    assert "UpdateFunctionConfiguration" not in lab.gaps.operations()[calls:]


def test_attach_refuses_a_layer_attached_by_hand(lab):
    lab.function("manual", layers=[lab.layer])
    refuse(lab, ah.TargetRefused, r"manual already has the chaos layer.*attached by hand",
           FunctionName="manual")


def test_attach_refuses_a_missing_alias(lab):
    lab.function("orders", alias=None)
    refuse(lab, ah.TargetNotFound, r"orders has no alias 'live'", FunctionName="orders",
           AliasName="live")


def test_attach_refuses_a_layer_version_that_does_not_exist(lab):
    lab.function("orders")
    lab.layer = lab.layer.rsplit(":", 1)[0] + ":99"
    refuse(lab, ah.TargetNotFound, r"layer version .*:99 does not exist; deploy the layer "
                                   r"\(deploy.sh\) and pass the stack output LayerArn",
           FunctionName="orders")


def test_attach_refuses_a_layer_from_another_region(lab):
    lab.function("orders")
    lab.layer = lab.layer.replace("us-east-1", "eu-west-1")
    refuse(lab, ah.InvalidParameter, r"is in eu-west-1.*publish it in us-east-1",
           FunctionName="orders")


def test_attach_refuses_more_targets_than_max_targets(lab):
    for name in ("a1", "a2", "a3"):
        lab.function(name, alias=None)
    refuse(lab, ah.TargetRefused, r"3 functions selected, more than MaxTargets=2",
           FunctionName="a1,a2,a3", MaxTargets="2")


def test_one_refused_target_stops_the_whole_run_before_any_change(lab):
    lab.function("good", alias=None)
    lab.function("legacy", runtime="nodejs20.x", alias=None)
    refuse(lab, ah.TargetRefused, r"legacy runs nodejs20.x.*nothing was changed",
           FunctionName="good,legacy")


def test_detach_refuses_a_restore_record_edited_by_hand(lab):
    lab.function("orders", env={config.RESTORE_STATE: "{not json"})
    with pytest.raises(ah.TargetRefused, match=r"orders: CHAOS_RESTORE_STATE is not a record.*"
                                               r"restore the function by hand"):
        ah.detach({"FunctionName": "orders"}, lab.aws)


def test_aws_errors_are_wrapped_with_code_and_message(lab):
    lab.function("orders")
    lab.gaps.fail_at = None

    def denied(params, model, **_):
        if model.name == "UpdateFunctionConfiguration":
            from botocore.exceptions import ClientError
            raise ClientError({"Error": {"Code": "AccessDeniedException",
                                         "Message": "not authorized to lambda:Update"}},
                              "UpdateFunctionConfiguration")
    lab.lam.meta.events.register("before-parameter-build.lambda", denied)
    with pytest.raises(ah.AutomationError, match=r"put back.*update_function_configuration\("
                                                 r"arn:.*:function:orders\) failed: "
                                                 r"AccessDeniedException: not authorized"):
        ah.attach(lab.params(FunctionName="orders"), lab.aws)
