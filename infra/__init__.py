"""CDK infrastructure of txnpipe: one construct per concern, composed in :class:`TxnPipeStack`.

``build(app)`` is what ``app.py`` (and the tests) call: it reads the context, creates the stack
and, unless ``txnpipe:nag`` is false, registers cdk-nag's AwsSolutions checks.
"""

from __future__ import annotations

from infra.node import use_project_node

use_project_node()  # before aws_cdk starts jsii: the project's Node, not PATH's (infra/node.py)

import aws_cdk as cdk

from infra.config import TxnPipeConfig
from infra.nag import add_nag_checks
from infra.stack import TxnPipeStack

__all__ = ["TxnPipeConfig", "TxnPipeStack", "build"]


def build(app: cdk.App) -> TxnPipeStack:
    config = TxnPipeConfig.from_context(app.node)
    env = cdk.Environment(**config.environment) if config.environment else None
    stack = TxnPipeStack(app, config.stack_name, config=config, env=env)
    if config.nag:
        add_nag_checks(app)
    return stack
