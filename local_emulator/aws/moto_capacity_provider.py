"""moto's Lambda keeps a function's `CapacityProviderConfig` (Lambda Managed Instances).

botocore's lambda model has `CapacityProviderConfig` on CreateFunction and
UpdateFunctionConfiguration, and returns it in every FunctionConfiguration:
`LambdaManagedInstancesCapacityProviderConfig` with `CapacityProviderArn` (required),
`PerExecutionEnvironmentMaxConcurrency` (1-1600) and `ExecutionEnvironmentMemoryGiBPerVCpu`
(2.0-8.0). moto 5.2.1 accepts the parameter and drops it: GetFunctionConfiguration never
returns it, so the sandbox could not tell a Managed Instances function from a default one.
`install()` keeps the value as given and returns it, only for a function that has one; moto's
answer for every other function is unchanged. Published versions inherit it (moto copies the
function object). Capacity providers themselves (CreateCapacityProvider) are not modelled.
"""
from __future__ import annotations

import functools
from typing import Any, Dict

from moto.awslambda.models import LambdaFunction

__all__ = ["FIELD", "install"]

FIELD = "CapacityProviderConfig"
_ATTRIBUTE = "capacity_provider_config"


def install() -> None:
    """Patch moto's LambdaFunction in this process (idempotent)."""
    if getattr(LambdaFunction, "_keeps_capacity_provider_config", False):
        return
    create, describe, update = (LambdaFunction.__init__, LambdaFunction.get_configuration,
                                LambdaFunction.update_configuration)

    @functools.wraps(create)
    def __init__(self, account_id: str, spec: Dict[str, Any], *args, **kwargs) -> None:
        create(self, account_id, spec, *args, **kwargs)
        setattr(self, _ATTRIBUTE, spec.get(FIELD))

    @functools.wraps(describe)
    def get_configuration(self, *args, **kwargs) -> Dict[str, Any]:
        configuration = describe(self, *args, **kwargs)
        if getattr(self, _ATTRIBUTE, None):
            configuration[FIELD] = getattr(self, _ATTRIBUTE)
        return configuration

    @functools.wraps(update)
    def update_configuration(self, config_updates: Dict[str, Any]) -> Dict[str, Any]:
        if config_updates.get(FIELD):
            setattr(self, _ATTRIBUTE, config_updates[FIELD])
        return update(self, config_updates)

    LambdaFunction.__init__ = __init__  # type: ignore[method-assign]
    LambdaFunction.get_configuration = get_configuration  # type: ignore[method-assign]
    LambdaFunction.update_configuration = update_configuration  # type: ignore[method-assign]
    LambdaFunction._keeps_capacity_provider_config = True  # type: ignore[attr-defined]
