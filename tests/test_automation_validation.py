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


@pytest.mark.parametrize("runtime", ["python3.8", "nodejs18.x", "java8", "dotnet6"])
def test_attach_refuses_runtime_the_layer_does_not_serve(lab, runtime):
    lab.function("legacy", runtime=runtime, alias=None)
    refuse(lab, ah.TargetRefused, rf"function legacy runs {runtime}; the layer serves "
                                  rf"{', '.join(config.ACCEPTED_RUNTIMES)}; upgrade",
           FunctionName="legacy")


@pytest.mark.parametrize("runtime", config.OS_ONLY_RUNTIMES)
def test_attach_refuses_os_only_runtime_whose_bootstrap_ignores_the_wrapper(lab, runtime):
    lab.function("native", runtime=runtime, alias=None)
    refuse(lab, ah.TargetRefused, rf"function native runs {runtime}, an OS-only runtime whose "
                                  r"bootstrap ignores AWS_LAMBDA_EXEC_WRAPPER.*target a function "
                                  r"on a managed runtime", FunctionName="native")


def test_attach_refuses_a_layer_version_listing_no_runtime_of_the_functions_language(lab):
    lab.layer = publish_layer(lab.gaps.raw, "lambda-chaos", runtimes=("python3.12", "python3.11"))
    lab.function("orders", runtime="nodejs22.x", alias=None)
    refuse(lab, ah.TargetRefused, r"orders runs nodejs22.x; layer version .*lambda-chaos:\d+ "
                                  r"lists only python3.12, python3.11; deploy the current layer",
           FunctionName="orders")


# The layer version lists at most 15 runtimes; the rest of ACCEPTED_RUNTIMES share a language
# with one it lists, and the binary serves them all.
@pytest.mark.parametrize("runtime", sorted(set(config.ACCEPTED_RUNTIMES) -
                                           set(config.COMPATIBLE_RUNTIMES)) +
                         ["nodejs24.x", "python3.14", "java25", "dotnet10", "ruby3.4"])
def test_attach_serves_every_accepted_runtime_including_those_the_layer_cannot_list(lab, runtime):
    lab.function("svc", runtime=runtime, alias=None)
    ah.attach(lab.params(FunctionName="svc"), lab.aws)
    cfg = lab.gaps.raw.get_function_configuration(FunctionName="svc")
    assert lab.layer in [layer["Arn"] for layer in cfg["Layers"]]
    assert cfg["Environment"]["Variables"][config.EXEC_WRAPPER] == config.WRAPPER_PATH


@pytest.mark.parametrize("function_arch,layer_arch", [("arm64", "x86_64"), ("x86_64", "arm64")])
def test_attach_refuses_architecture_the_layer_version_does_not_declare(lab, function_arch,
                                                                        layer_arch):
    lab.layer = publish_layer(lab.gaps.raw, "lambda-chaos", architectures=(layer_arch,))
    lab.function("svc", architecture=function_arch, alias=None)
    refuse(lab, ah.TargetRefused, rf"svc runs on {function_arch}; layer version .* declares "
                                  rf"{layer_arch}; pass a layer version published for "
                                  rf"{function_arch}", FunctionName="svc")


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
    lab.function("legacy", runtime="nodejs18.x", alias=None)
    refuse(lab, ah.TargetRefused, r"legacy runs nodejs18.x.*nothing was changed",
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
