"""Run a Lambda handler of ``lambdas/`` in this process, as ``sam local invoke`` would in Docker."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from txnpipe.core.errors import TxnpipeError

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"


def invoke_handler(function: str, event: dict[str, Any]) -> Any:
    path = LAMBDAS / function / "handler.py"
    if not path.is_file():
        raise TxnpipeError(f"no handler at {path}: run from a txnpipe checkout")
    spec = importlib.util.spec_from_file_location(f"txnpipe_lambda_{function}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    context = SimpleNamespace(function_name=f"txnpipe-{function}", aws_request_id="local")
    return module.handler(event, context)
