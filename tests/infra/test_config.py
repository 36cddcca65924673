"""Reading and validating the ``txnpipe:*`` context keys (no synthesis)."""

from __future__ import annotations

import json

import pytest

from infra.config import (
    CHUNKER_DB_USER,
    DEFAULTS,
    DETECTOR_DB_USER,
    REMOVED,
    SETTING_NAMES,
    ConfigError,
    TxnPipeConfig,
    parse_settings,
)
from tests.infra.synth import REPO, cdk_json_context
from txnpipe.core.streams import IMPORTANCE_SUBPREFIX, TRANSACTIONS_SUBPREFIX


def test_defaults() -> None:
    config = TxnPipeConfig.from_mapping({})
    assert config.stack_name == "TxnPipe"
    assert config.environment is None
    assert config.retain and config.nag
    assert config.transactions_prefix == "inputs/transactions/"
    assert config.importance_prefix == "inputs/importance/"
    assert config.glue_job_name == "TxnPipe-upgrade-percentiles"
    assert config.run_seconds == 50 and config.chunker_timeout_seconds == 70
    assert config.chunker_reserved_concurrency == 1
    assert config.upgrade_engine == "inline"
    assert dict(config.settings_env) == {}


def test_settings_names_match_the_core() -> None:
    settings = pytest.importorskip("txnpipe.core.settings")
    assert sorted(SETTING_NAMES) == sorted(settings.Settings.names())


def test_cdk_json_uses_only_known_keys() -> None:
    keys = [k.removeprefix("txnpipe:") for k in cdk_json_context() if k.startswith("txnpipe:")]
    assert set(keys) <= set(DEFAULTS)
    assert json.loads((REPO / "cdk.json").read_text())["app"] == ".venv/bin/python app.py"


def test_settings_from_json_text_and_objects() -> None:
    assert parse_settings('{"chunk_rows": "1000", "child_max_avg_value": 20}') == {
        "TXNPIPE_CHILD_MAX_AVG_VALUE": "20.0",
        "TXNPIPE_CHUNK_ROWS": "1000",
    }
    assert parse_settings({"dei_max_female_male_ratio": "0.1"}) == {
        "TXNPIPE_DEI_MAX_FEMALE_MALE_RATIO": "0.1"
    }


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"chunk_size": 5}, "unknown setting"),
        ({"chunk_rows": 1.5}, "integer"),
        ({"chunk_rows": "many"}, "number"),
        ({"child_max_avg_value": "nan"}, "finite"),
        ({"child_max_avg_value": True}, "number"),
        ("[1, 2]", "object"),
        ("{not json", "JSON"),
    ],
)
def test_bad_settings(settings: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings(settings)


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"removalPolicy": "snapshot"}, "removalPolicy"),
        ({"upgradeEngine": "duckdb"}, "upgradeEngine"),
        # no stream is fixed at deploy time: the keys of earlier versions say what replaced them
        ({"transactionsKey": "inputs/transactions/x.csv"}, "transactionsKey is gone: no stream"),
        ({"importanceKey": "inputs/importance/x.csv"}, "importanceKey is gone: a stream weighs"),
        ({"inputsPrefix": "chunks/"}, "overlaps"),
        ({"runSeconds": 65}, "chunkerTimeoutSeconds"),
        ({"chunkerReservedConcurrency": 2}, "chunkerReservedConcurrency"),
        ({"dbEngineVersion": "15.4"}, "dbEngineVersion"),
        ({"dbUsername": "postgres"}, "dbUsername"),
        ({"maxAzs": 1}, "maxAzs"),
        ({"nag": "maybe"}, "nag"),
        ({"stackName": "9lives"}, "stackName"),
        ({"glueWorkerType": "Standard"}, "glueWorkerType"),
        ({"noSuchKey": 1}, "unknown context"),
    ],
)
def test_bad_context(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TxnPipeConfig.from_mapping(raw)


def test_input_sub_prefixes_follow_the_inputs_prefix() -> None:
    config = TxnPipeConfig.from_mapping({"inputsPrefix": "incoming/"})
    assert config.transactions_prefix == "incoming/transactions/"
    assert config.importance_prefix == "incoming/importance/"
    assert (TRANSACTIONS_SUBPREFIX, IMPORTANCE_SUBPREFIX) == ("transactions/", "importance/")


def test_cdk_json_fixes_no_stream() -> None:
    context = cdk_json_context()
    assert not set(REMOVED) & {k.removeprefix("txnpipe:") for k in context}
    TxnPipeConfig.from_mapping(
        {k.removeprefix("txnpipe:"): v for k, v in context.items() if k.startswith("txnpipe:")}
    )


def test_db_user_names_match_the_core() -> None:
    postgres = pytest.importorskip("txnpipe.postgres")
    assert CHUNKER_DB_USER == postgres.CHUNKER_ROLE == "txnpipe_chunker"
    assert DETECTOR_DB_USER == postgres.DETECTOR_ROLE == "txnpipe_detector"


def test_cli_strings_are_coerced() -> None:
    config = TxnPipeConfig.from_mapping(
        {
            "runSeconds": "40",
            "dbMultiAz": "true",
            "nag": "false",
            "chunkerReservedConcurrency": "0",
            "account": "111122223333",
            "region": "eu-west-1",
        }
    )
    assert config.run_seconds == 40 and config.db_multi_az and not config.nag
    assert config.chunker_reserved_concurrency == 0
    assert config.environment == {"account": "111122223333", "region": "eu-west-1"}
