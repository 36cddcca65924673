"""cdk-nag (v3, CDK policy validation): registering the AwsSolutions pack and acknowledging rules.

cdk-nag 3 replaced ``NagSuppressions`` with CDK's ``Validations.of(scope).acknowledge``; every
acknowledgment here goes through :func:`acknowledge`, which refuses one without a real reason.
An acknowledgment on a construct covers the CloudFormation resources beneath it.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

MIN_REASON_LENGTH = 20


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge one nag finding (``AwsSolutions-X`` or ``AwsSolutions-X[finding]``) on ``scope``."""
    if not rule_id.startswith("AwsSolutions-"):
        raise ValueError(f"not an AwsSolutions rule id: {rule_id!r}")
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise ValueError(f"acknowledging {rule_id} needs a written reason, got {reason!r}")
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule_id, reason=reason.strip()))


def add_nag_checks(scope: IConstruct) -> AwsSolutionsChecks:
    """Run the AwsSolutions pack on synth: an unacknowledged error fails the synth."""
    checks = AwsSolutionsChecks(scope, verbose=True)
    cdk.Validations.of(scope).add_plugins(checks)
    return checks


def iam5_resource(stack: cdk.Stack, arn: str) -> str:
    """The ``AwsSolutions-IAM5[Resource::...]`` finding id that cdk-nag reports for ``arn``.

    cdk-nag renders intrinsics as ``<AWS::Region>`` (Ref) and ``<LogicalId.Attr>`` (GetAtt)
    inside the joined string; with a concrete account/region they are literals instead.
    """
    return f"AwsSolutions-IAM5[Resource::{_render(stack.resolve(arn))}]"


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref":
            return f"<{argument}>"
        if function == "Fn::GetAtt":
            return f"<{argument[0]}.{argument[1]}>"
        if function == "Fn::Join":
            delimiter, parts = argument
            return delimiter.join(_render(part) for part in parts)
    raise ValueError(f"cannot render {value!r} as a cdk-nag finding id")
