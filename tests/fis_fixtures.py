"""Realistic values for the FIS templates' placeholders, as deploy.sh takes them from a stack.

The names are long on purpose (a 60-character stack name, as CloudFormation derives role and
document names from it), so the 1,024-character cap on an action parameter is tested honestly.
"""
ACCOUNT = "123456789012"
REGION = "eu-west-1"
STACK = "lambda-chaos-toolkit-production-experiments-eu-west-1-team-a"


def stack_outputs(region: str = REGION, stack: str = STACK) -> dict:
    """The outputs deploy.sh reads from the toolkit stack (and the sample app's alarm and
    dashboard)."""
    arn = f"arn:aws:%s:{region}:{ACCOUNT}:%s"
    return {
        "FisRoleArn": f"arn:aws:iam::{ACCOUNT}:role/{stack}-fis",
        "AutomationRoleArn": f"arn:aws:iam::{ACCOUNT}:role/{stack}-automation",
        "FaultDocumentArn": arn % ("ssm", f"document/{stack}-LambdaFault"),
        "ExperimentDocumentArn": arn % ("ssm", f"document/{stack}-LambdaFaultExperiment"),
        "LayerArn": arn % ("lambda", f"layer:{stack}-chaos-layer:17"),
        "StopAlarmArn": arn % ("cloudwatch", f"alarm:{stack}-sample-app-hello-5xx"),
        "LogGroupArn": arn % ("logs", f"log-group:/aws/fis/{stack}:*"),
        "TargetFunctionName": f"{stack}-sample-app-hello",
        "TargetTagKey": "chaos:target",
        "TargetTagValue": "sample-app",
        "ReportBucketName": f"{stack}-reportbucket-1a2b3c4d5e6f"[-63:],
        "DashboardArn": f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/{stack}-sample-app-{region}",
    }
