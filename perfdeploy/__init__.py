"""perfdeploy: render, lint and deploy the Performance Management Service's CloudFormation stacks."""

__version__ = "0.1.0"
