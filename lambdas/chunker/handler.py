"""Lambda entry point of mechanism X, the chunker (EventBridge schedule, once a minute).

Thin by design: configuration comes from the environment (set by infra/chunker.py) and all
the work is in the core package, bundled next to this file.
"""

from __future__ import annotations

from typing import Any

from txnpipe.aws.entry import handle_chunker_event


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Write the chunks that fall due while this invocation paces itself (TXNPIPE_RUN_SECONDS)."""
    return handle_chunker_event(event, context)
