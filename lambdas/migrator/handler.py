"""Lambda entry point of the database migration (a CloudFormation custom resource, at deploy time).

Thin by design: the Provider framework (infra/migration.py) invokes it with the custom
resource's event and answers CloudFormation; all the work is in the core package, bundled next
to this file.
"""

from __future__ import annotations

from typing import Any

from txnpipe.aws.deploy_migration import handle_migration_event


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Apply the schema and the function roles on Create and Update; nothing on Delete."""
    return handle_migration_event(event, context)
