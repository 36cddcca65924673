"""Lambda entry point of mechanism Y, the detector (S3 put events under chunks/, Glue job state changes).

Thin by design: configuration comes from the environment (set by infra/detector.py) and all
the work is in the core package, bundled next to this file.
"""

from __future__ import annotations

from typing import Any

from txnpipe.aws.entry import handle_detector_event


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Apply the chunks named by the event, in chunk order, and write the detections due."""
    return handle_detector_event(event, context)
