"""txnpipe: streaming transaction-pattern detection (chunker X, detector Y)."""
from __future__ import annotations

__version__ = "0.4.0"  # the package's version, read by pyproject.toml
