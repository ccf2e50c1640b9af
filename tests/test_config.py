"""The layer's configuration contract: bad values mean no fault and a message naming the variable."""
import datetime as dt

import pytest

from chaos_layer import config as c


def test_no_fault_configured_means_inactive():
    cfg = c.FaultConfig.from_environ({})
    assert cfg.fault_type is None and not cfg.active()
    assert cfg.problems == ()


def test_latency_fault_is_parsed():
    cfg = c.FaultConfig.from_environ({c.FAULT_TYPE: "latency", c.LATENCY_MS: "2000",
                                      c.LATENCY_JITTER_MS: "50", c.INVOCATION_PERCENTAGE: "12.5"})
    assert (cfg.fault_type, cfg.latency_ms, cfg.latency_jitter_ms, cfg.percentage) == (
        "latency", 2000, 50, 12.5)
    assert cfg.active()


@pytest.mark.parametrize("name,value", [
    (c.LATENCY_MS, "fast"), (c.INVOCATION_PERCENTAGE, "150"), (c.FAULT_TYPE, "explode"),
    (c.EXPIRES_AT, "tomorrow"), (c.RESPONSE_STATUS_CODE, "99"), (c.PREVENT_EXECUTION, "maybe"),
    (c.PROXY_PORT, "70000"), (c.UPSTREAM_RUNTIME_API, "localhost"),
])
def test_bad_value_disables_fault_and_names_variable_and_value(name, value):
    env = {c.FAULT_TYPE: "latency", c.LATENCY_MS: "100", name: value}
    cfg = c.FaultConfig.from_environ(env)
    assert cfg.fault_type is None
    assert len(cfg.problems) == 1
    assert name in cfg.problems[0] and repr(value) in cfg.problems[0]


def test_expiry_in_the_past_makes_fault_inactive():
    cfg = c.FaultConfig.from_environ({c.FAULT_TYPE: "error", c.EXPIRES_AT: "2020-01-01T00:00:00Z"})
    assert cfg.fault_type == "error" and not cfg.active()


def test_expiry_round_trips_through_its_written_form():
    when = dt.datetime(2030, 5, 1, 12, 30, tzinfo=dt.timezone.utc)
    assert c.parse_utc_time(c.format_utc_time(when)) == when


def test_every_setting_is_named_once():
    names = [s.name for s in c.SETTINGS]
    assert len(names) == len(set(names))
    assert all(n.startswith("CHAOS_") for n in names)


def test_fault_config_is_immutable_and_compares_by_value():
    env = {c.FAULT_TYPE: "latency", c.LATENCY_MS: "5"}
    cfg = c.FaultConfig.from_environ(env)
    assert cfg == c.FaultConfig.from_environ(env) and hash(cfg) == hash(c.FaultConfig.from_environ(env))
    with pytest.raises(AttributeError, match="immutable"):
        cfg.latency_ms = 10
    with pytest.raises(TypeError, match="latency"):
        c.FaultConfig(latncy_ms=1)


def test_port_zero_means_any_free_port():
    assert c.FaultConfig.from_environ({c.PROXY_PORT: "0"}).proxy_port == 0
    assert c.FaultConfig.from_environ({}).proxy_port == c.DEFAULT_PROXY_PORT


def test_ready_file_is_keyed_by_the_runtime_api_address():
    assert c.ready_file("127.0.0.1:9001") != c.ready_file("127.0.0.1:9002")
    assert c.ready_file("127.0.0.1:9001").startswith("/tmp/")


# --- Everything agrees with layer/settings.json ------------------------------------------------

import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import botocore.session  # noqa: E402

import automation_handler as ah  # noqa: E402
from cloudformation import stack  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "ssm_documents"))
sys.path.insert(0, str(REPO / "layer"))
import config_table  # noqa: E402
import render  # noqa: E402

JSON = json.loads((REPO / "layer" / "settings.json").read_text(encoding="utf-8"))
LAMBDA = botocore.session.get_session().get_service_model("lambda")
# FaultConfig's fields, each read from one setting.
FIELDS = {"fault_type": "FAULT_TYPE", "latency_ms": "LATENCY_MS",
          "latency_jitter_ms": "LATENCY_JITTER_MS", "percentage": "INVOCATION_PERCENTAGE",
          "prevent_execution": "PREVENT_EXECUTION", "error_type": "ERROR_TYPE",
          "error_message": "ERROR_MESSAGE", "response_status_code": "RESPONSE_STATUS_CODE",
          "response_body": "RESPONSE_BODY", "expires_at": "EXPIRES_AT",
          "experiment_id": "EXPERIMENT_ID", "proxy_port": "PROXY_PORT",
          "upstream": "UPSTREAM_RUNTIME_API", "metrics_namespace": "METRICS_NAMESPACE",
          "decision_seed": "DECISION_SEED"}


def test_every_setting_is_a_python_name_spelt_as_in_the_json_and_none_is_python_only():
    expected = {entry["constant"]: entry["name"] for entry in JSON["settings"]}
    assert {constant: getattr(c, constant) for constant in expected} == expected
    defined_here = {key: value for key, value in vars(c).items()
                    if isinstance(value, str) and value.startswith("CHAOS_")}
    assert defined_here == expected


def test_settings_rows_are_the_json_entries_in_order():
    rows = [(s.constant, s.name, s.kind, s.default_value, s.type, s.default, s.meaning,
             s.set_by_automation) for s in c.SETTINGS]
    assert rows == [(e["constant"], e["name"], e["kind"], e["default"], e["type"],
                     e["default_text"], e["meaning"], e["set_by_automation"])
                    for e in JSON["settings"]]


def test_every_kind_has_a_parser_and_every_default_parses_to_itself():
    for s in c.SETTINGS:
        parse = c.PARSERS[s.kind]
        if s.default_value is not None:
            text = str(s.default_value).lower() if isinstance(s.default_value, bool) \
                else str(s.default_value)
            assert parse(text) == s.default_value, s.name


def test_fault_config_defaults_are_the_json_defaults():
    cfg = c.FaultConfig.from_environ({})
    assert set(FIELDS) == set(c.FaultConfig.__slots__) - {"problems"}
    for field, constant in FIELDS.items():
        default = next(e["default"] for e in JSON["settings"] if e["constant"] == constant)
        assert getattr(cfg, field) == (default if default is not None or field != "upstream"
                                       else ""), field


def test_paths_lambda_variables_fault_types_and_automation_variables_come_from_the_json():
    layer, lambda_variables = JSON["layer"], JSON["lambda_variables"]
    assert (c.LAYER_ROOT, c.WRAPPER_PATH, c.EXTENSION_NAME, c.DEFAULT_PROXY_PORT,
            c.READY_FILE_PATTERN) == (layer["root"], layer["wrapper_path"],
                                      layer["extension_name"], layer["default_proxy_port"],
                                      layer["ready_file_pattern"])
    assert (c.EXEC_WRAPPER, c.RUNTIME_API) == (lambda_variables["exec_wrapper"],
                                               lambda_variables["runtime_api"])
    assert c.WRAPPER_PATH.startswith(c.LAYER_ROOT + "/")
    proxy_port = next(e for e in JSON["settings"] if e["constant"] == "PROXY_PORT")
    assert proxy_port["default"] == layer["default_proxy_port"]  # the JSON says it twice
    assert c.FAULT_TYPES == tuple(JSON["fault_types"])
    fault_type = next(e for e in JSON["settings"] if e["constant"] == "FAULT_TYPE")
    assert all(f"`{kind}`" in fault_type["type"] for kind in c.FAULT_TYPES)
    assert c.AUTOMATION_VARIABLES == tuple(e["name"] for e in JSON["settings"]
                                           if e["set_by_automation"])


def test_readme_table_has_one_row_per_json_setting_with_its_words():
    rows = config_table.render().splitlines()[2:]
    assert len(rows) == len(JSON["settings"])
    for row, e in zip(rows, JSON["settings"]):
        assert row == (f"| `{e['name']}` | {e['type']} | {e['default_text']} | "
                       f"{'yes' if e['set_by_automation'] else 'no'} | {e['meaning']} |")


def _document_scripts():
    """The one attachment every document's script steps run."""
    yield render.ATTACHMENT, (REPO / "ssm_documents" / "attachments" / render.ATTACHMENT).read_text(
        encoding="utf-8")


def test_ssm_documents_inline_the_json_values_the_handler_imports():
    source = (REPO / "automation_handler.py").read_text(encoding="utf-8")
    names = render.config_names(source)
    assert {"ACCEPTED_RUNTIMES", "OS_ONLY_RUNTIMES", "FAULT_TYPE", "WRAPPER_PATH"} <= set(names)
    scripts = list(_document_scripts())
    assert len(scripts) == 1
    for where, script in scripts:
        namespace = {"__name__": "__ssm_script__"}
        exec(compile(script, where, "exec"), namespace)
        for name in names:
            value = getattr(c, name)
            if callable(value):
                assert callable(namespace[name]), f"{where}: {name}"
            else:
                assert namespace[name] == value, f"{where}: {name}"
        assert namespace["ACCEPTED_RUNTIMES"] == tuple(JSON["runtimes"]["accepted"]), where
        assert namespace["OS_ONLY_RUNTIMES"] == tuple(JSON["runtimes"]["os_only"]), where
        assert namespace["runtime_language"]("java8.al2") == "java"


def test_the_automation_accepts_exactly_the_json_runtimes():
    assert ah.ACCEPTED_RUNTIMES == c.ACCEPTED_RUNTIMES == tuple(JSON["runtimes"]["accepted"])
    assert ah.OS_ONLY_RUNTIMES == c.OS_ONLY_RUNTIMES == tuple(JSON["runtimes"]["os_only"])
    assert not hasattr(ah, "SUPPORTED_RUNTIMES")  # no second list


def test_runtime_lists_are_lambda_runtimes_and_fit_a_layer_version():
    enum = set(LAMBDA.shape_for("Runtime").enum)
    most = LAMBDA.shape_for("CompatibleRuntimes").metadata["max"]
    accepted, compatible = c.ACCEPTED_RUNTIMES, c.COMPATIBLE_RUNTIMES
    for listed in (accepted, compatible, c.OS_ONLY_RUNTIMES):
        assert len(set(listed)) == len(listed) and set(listed) <= enum, set(listed) - enum
    assert set(compatible) <= set(accepted) and len(compatible) <= most == 15
    assert not set(accepted) & set(c.OS_ONLY_RUNTIMES)
    assert {r for r in enum if r.startswith("provided")} == set(c.OS_ONLY_RUNTIMES)
    # so the automation's language check passes the stack's own layer for every accepted runtime
    languages = {c.runtime_language(r) for r in compatible}
    assert {c.runtime_language(r) for r in accepted} == languages
    assert set(c.ARCHITECTURES) == set(LAMBDA.shape_for("Architecture").enum)


def test_stack_layer_versions_list_the_json_runtimes_and_its_architectures():
    template = stack.render_stack(REPO / "dist" / "chaos-layer.zip")
    layers = [r["Properties"] for r in template["Resources"].values()
              if r["Type"] == "AWS::Lambda::LayerVersion"]
    assert layers
    most = LAMBDA.shape_for("CompatibleArchitectures").metadata["max"]
    architectures = set()
    for properties in layers:
        assert properties["CompatibleRuntimes"] == list(JSON["runtimes"]["compatible_runtimes"])
        listed = properties["CompatibleArchitectures"]
        assert set(listed) <= set(JSON["architectures"]) and len(listed) <= most
        architectures |= set(listed)
    assert architectures == set(JSON["architectures"])
