"""Deploy-time helpers: render the FIS templates and the CloudFormation stack, check them offline.

`deploy.sh` calls `python -m cloudformation.render …`; the tests import the same functions, so
what is tested is exactly what is deployed.
"""
