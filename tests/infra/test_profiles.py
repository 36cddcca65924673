"""``txnpipe:profile``: dev (the smallest instance, one AZ, endpoints in one AZ, destroyed with
the stack) and prod (Multi-AZ, deletion protection, retained data), each cdk-nag clean; a key
of its own overrides the profile."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ConfigError, TxnPipeConfig
from tests.infra.synth import Synth, synthesize


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(tmp_path_factory.mktemp("cdk-dev"), nag=True, profile="dev")


def _instance(synth: Synth) -> dict[str, Any]:
    (resource,) = synth.of_type("AWS::RDS::DBInstance").values()
    return resource


def _endpoint_subnets(synth: Synth) -> list[int]:
    return sorted(len(e["Properties"]["SubnetIds"])
                  for e in synth.of_type("AWS::EC2::VPCEndpoint").values()
                  if e["Properties"].get("VpcEndpointType") == "Interface")  # fmt: skip


def test_dev_is_the_cheapest_safe_stack(dev: Synth) -> None:
    assert dev.error is None, dev.violations()
    instance = _instance(dev)
    props = instance["Properties"]
    assert (props["DBInstanceClass"], props["MultiAZ"]) == ("db.t4g.micro", False)
    assert props["DeletionProtection"] is False and props["BackupRetentionPeriod"] == 1
    assert instance["DeletionPolicy"] == "Delete"
    assert _endpoint_subnets(dev) == [1, 1]  # Secrets Manager and EventBridge, one AZ each
    assert props["StorageEncrypted"] is True  # safe still: encrypted, TLS, isolated subnets


def test_prod_is_multi_az_protected_and_retained(default_synth: Synth) -> None:
    instance = _instance(default_synth)  # cdk.json sets no profile: prod
    props = instance["Properties"]
    assert (props["DBInstanceClass"], props["MultiAZ"]) == ("db.t4g.small", True)
    assert props["DeletionProtection"] is True and props["BackupRetentionPeriod"] == 7
    assert instance["DeletionPolicy"] in ("Snapshot", "Retain")
    assert _endpoint_subnets(default_synth) == [2, 2]  # an endpoint in every AZ


def test_a_key_of_its_own_overrides_the_profile() -> None:
    config = TxnPipeConfig.from_mapping({"profile": "dev", "dbMultiAz": "true",
                                         "removalPolicy": "retain"})  # fmt: skip
    assert config.db_multi_az and config.retain and config.db_instance_type == "t4g.micro"
    assert TxnPipeConfig.from_mapping({}).profile == "prod"
    with pytest.raises(ConfigError, match="profile must be one of dev, prod"):
        TxnPipeConfig.from_mapping({"profile": "staging"})


def test_the_cost_tables_idle_totals_add_up() -> None:
    import re

    from tests.infra.synth import REPO

    docs = (REPO / "docs" / "deploy.md").read_text()
    table = docs.split("| item | price | idle, `dev` | idle, `prod` | per million records |", 1)[1]
    rows = [line.split("|")[1:-1] for line in table.split("\n\n", 1)[0].strip().splitlines()[1:]]
    *items, total = rows
    assert "total" in total[0]

    def dollars(cell: str) -> float:
        found = re.match(r"\s*\$(\d+\.\d\d)\s*$", cell)
        return float(found[1]) if found else 0.0

    for column in (2, 3):
        stated = float(re.search(r"\$(\d+)", total[column])[1])  # type: ignore[index]
        assert abs(sum(dollars(item[column]) for item in items) - stated) < 1, column
