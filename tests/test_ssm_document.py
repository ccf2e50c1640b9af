"""SSM documents and parameters are checked as StartAutomationExecution checks them,
before any step runs; each refusal names the value and what to write instead."""
import pytest

from local_emulator.errors import DocumentError
from local_emulator.aws.ssm_document import load_document, resolve_parameters
from tests.test_ssm_runner import _doc, _script, _sleep


def test_parameters_are_typed_from_text_as_fis_sends_them():
    params = {"Name": {"type": "String"}, "Count": {"type": "Integer"}, "On": {"type": "Boolean"},
              "Names": {"type": "StringList"}, "Mode": {"type": "String", "default": "ENABLED"}}
    values = resolve_parameters(load_document(_doc([_script("A")], parameters=params)),
                                {"Name": ["fn"], "Count": "3", "On": "TRUE", "Names": "a,b"})
    assert values == {"Name": "fn", "Count": 3, "On": True, "Names": ["a,b"], "Mode": "ENABLED"}


def test_unknown_parameter_is_refused_naming_it():
    with pytest.raises(DocumentError, match="declares no parameter Nmae; it takes Name"):
        resolve_parameters(load_document(_doc([_script("A")])), {"Nmae": "x"})


def test_missing_required_parameter_is_refused():
    with pytest.raises(DocumentError, match="parameter Name is required"):
        resolve_parameters(load_document(_doc([_script("A")])), {})


def test_allowed_values_are_enforced():
    params = {"Name": {"type": "String"},
              "ChaosMode": {"type": "String", "allowedValues": ["ENABLED", "DISABLED"]}}
    with pytest.raises(DocumentError, match=r"ChaosMode='ON' is not one of the allowed values"):
        resolve_parameters(load_document(_doc([_script("A")], parameters=params)), {"Name": "n", "ChaosMode": "ON"})


def test_integer_parameter_given_as_text_must_be_a_number():
    params = {"Name": {"type": "String"}, "Count": {"type": "Integer"}}
    with pytest.raises(DocumentError, match="Count='many' is not an Integer"):
        resolve_parameters(load_document(_doc([_script("A")], parameters=params)), {"Name": "n", "Count": "many"})


def test_unsupported_action_is_refused_before_any_step_runs():
    document = _doc([_script("A"), {"name": "B", "action": "aws:runCommand", "inputs": {}}])
    with pytest.raises(DocumentError, match="aws:runCommand.*not supported locally"):
        load_document(document)


def test_undeclared_reference_is_refused():
    with pytest.raises(DocumentError, match=r"\{\{ Missing \}\} is neither a parameter"):
        load_document(_doc([_script("A", payload={"X": "{{ Missing }}"})]))


def test_on_cancel_continue_is_refused():
    with pytest.raises(DocumentError, match="onCancel 'Continue' must be Abort, step:StepName"):
        load_document(_doc([_sleep("A", onCancel="Continue")]))


def test_document_without_schema_version_0_3_is_refused():
    with pytest.raises(DocumentError, match="needs schemaVersion '0.3'"):
        load_document({"schemaVersion": "2.2", "mainSteps": []})
