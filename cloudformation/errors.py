"""The few things a user of `deploy.sh` or of the templates can get wrong, one class each."""
from __future__ import annotations

__all__ = ["DeployError", "MissingValueError", "TemplateInvalidError", "DocumentMissingError",
           "UnknownRegionError"]


class DeployError(Exception):
    """Base class: every message names the value at fault and the fix."""


class MissingValueError(DeployError):
    """Raised when a template has a `${Placeholder}` that no value was given for."""


class TemplateInvalidError(DeployError):
    """Raised when a rendered FIS template would be refused by CreateExperimentTemplate."""

    def __init__(self, name: str, problems: list) -> None:
        self.problems = list(problems)
        lines = "\n  - ".join(self.problems)
        super().__init__(f"FIS template {name!r} is invalid; fix these in fis_templates/{name}/"
                         f"template.json:\n  - {lines}")


class DocumentMissingError(DeployError):
    """Raised when an SSM document the stack needs is not in ssm_documents/."""


class UnknownRegionError(DeployError):
    """Raised when deploy.sh is given a region name that no AWS partition has."""
