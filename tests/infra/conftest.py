"""Fixtures of the infra tests: one synthesis per test module."""

from __future__ import annotations

import pytest

from tests.infra.synth import Synth, synthesize


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: long-running (downloads wheels, bundles Lambdas)")


@pytest.fixture(scope="module")
def default_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The stack with cdk.json's context only, no bundling, no cdk-nag."""
    result = synthesize(tmp_path_factory.mktemp("cdk-default"))
    assert result.error is None, f"synth failed: {result.error}\n{result.violations()}"
    return result
