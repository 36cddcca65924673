"""Deployment configuration, read from CDK context (``cdk.json`` or ``cdk -c key=value``).

Every key is prefixed ``txnpipe:``. Nothing account-specific lives in code: the account and
region come from context only if given (otherwise the stack is environment-agnostic and the
CLI's credentials decide where it goes), and every name has a default that is derived from
the stack name or left to CloudFormation.

Values passed with ``cdk -c`` arrive as strings, so each reader coerces: integers, booleans
(``true``/``false``), and JSON for the ``txnpipe:settings`` object.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from constructs import Node

from txnpipe.core import environment as ENV
from txnpipe.core.streams import DEFAULT_INPUTS_PREFIX, InputPrefixes

PREFIX = "txnpipe:"

# Prefixes of the data bucket (SPEC sections 3 and 4; ``glue/`` holds the Glue job's output).
CHUNKS_PREFIX = "chunks/"
DETECTIONS_PREFIX = "detections/"
REJECTS_PREFIX = "rejects/"
GLUE_PREFIX = "glue/"
ATHENA_PREFIX = "athena/"  # the Athena workgroup's query results

# SPEC section 6: the settings the core reads as TXNPIPE_<NAME> (integer ones first).
INTEGER_SETTINGS = (
    "chunk_rows",
    "detection_batch_rows",
    "upgrade_min_merchant_txns",
    "child_min_txns",
    "dei_min_female_customers",
)
NUMBER_SETTINGS = (
    "chunk_interval_seconds",
    "upgrade_count_percentile",
    "upgrade_weight_percentile",
    "child_max_avg_value",
    "dei_max_female_male_ratio",
)
SETTING_NAMES = INTEGER_SETTINGS + NUMBER_SETTINGS

# Observability (txnpipe/aws/observability.py): EMF metrics in this namespace, dimensions
# service (one per function, POWERTOOLS_SERVICE_NAME) and source (the stream's name).
METRICS_NAMESPACE = "txnpipe"
CHUNKER_SERVICE = "chunker"
DETECTOR_SERVICE = "detector"
# The functions' database roles, created by the migration (txnpipe.postgres.migrate:
# CHUNKER_ROLE, DETECTOR_ROLE); each function connects as its own, with an IAM token.
CHUNKER_DB_USER = "txnpipe_chunker"
DETECTOR_DB_USER = "txnpipe_detector"

UPGRADE_ENGINES = ("inline", "spark")
GLUE_WORKER_TYPES = ("G.1X", "G.2X", "G.4X", "G.8X", "G.025X")

# Every context key this app reads, with its default (documented in docs/deploy.md).
DEFAULTS: dict[str, Any] = {
    "stackName": "TxnPipe",
    "account": None,
    "region": None,
    "nag": True,
    "profile": "prod",
    "removalPolicy": None,  # from the profile
    "bucketName": None,
    "inputsPrefix": DEFAULT_INPUTS_PREFIX,
    "vpcCidr": "10.42.0.0/16",
    "maxAzs": 2,
    "dbName": "txnpipe",
    "dbUsername": "txnpipe_admin",
    "dbEngineVersion": "16.13",
    "dbInstanceType": None,  # from the profile
    "dbAllocatedStorageGiB": 20,
    "dbMaxAllocatedStorageGiB": 100,
    "dbMultiAz": None,  # from the profile
    "dbBackupRetentionDays": None,  # from the profile
    "endpointAzs": None,  # from the profile: the AZs the interface endpoints are in (0: all)
    "scheduleEnabled": True,
    "runSeconds": 50,
    "chunkerTimeoutSeconds": 70,
    "chunkerMemoryMiB": 256,
    "chunkerReservedConcurrency": 1,
    "detectorTimeoutSeconds": 300,
    "detectorMemoryMiB": 1024,
    "detectorReservedConcurrency": 0,
    "upgradeEngine": "inline",
    "glueJobName": None,
    "glueWorkerType": "G.1X",
    "glueNumberOfWorkers": 2,
    "glueTimeoutMinutes": 60,
    "glueMaxConcurrentRuns": 1,
    "logRetentionDays": 30,
    "scratchExpirationDays": 30,
    "outputsExpirationDays": None,
    "alarmTopicArn": None,
    "localInvoke": False,
    "settings": {},
}


# What ``txnpipe:profile`` sets, unless a key of its own says otherwise (docs/deploy.md,
# "Costs"). dev: the smallest instance, one AZ, the interface endpoints in one AZ (reached
# from the other across the VPC), everything destroyed with the stack. prod: Multi-AZ, a
# larger instance, deletion protection and retained data, an endpoint in every AZ.
PROFILES: dict[str, dict[str, Any]] = {
    "dev": {"removalPolicy": "destroy", "dbInstanceType": "t4g.micro", "dbMultiAz": False,
            "dbBackupRetentionDays": 1, "endpointAzs": 1},
    "prod": {"removalPolicy": "retain", "dbInstanceType": "t4g.small", "dbMultiAz": True,
             "dbBackupRetentionDays": 7, "endpointAzs": 0},
}  # fmt: skip

# Context keys of earlier versions, and what took their place.
REMOVED: dict[str, str] = {
    "transactionsKey": "no stream is fixed at deploy time: put a transactions file under "
    "<inputsPrefix>transactions/ and it becomes a stream (docs/deploy.md, 'Run streams')",
    "importanceKey": "a stream weighs with the newest file under <inputsPrefix>importance/ "
    "when it starts (docs/deploy.md, 'Run streams')",
}


class ConfigError(ValueError):
    """A context value that cannot be deployed; the message names the key."""


def _key(name: str) -> str:
    return PREFIX + name


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"context {_key(name)} must be true or false, got {value!r}")


def _as_int(
    name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        number = float(value)
        if not number.is_integer():
            raise ValueError
        result = int(number)
    except (TypeError, ValueError):
        raise ConfigError(f"context {_key(name)} must be an integer, got {value!r}") from None
    if minimum is not None and result < minimum:
        raise ConfigError(f"context {_key(name)} must be >= {minimum}, got {result}")
    if maximum is not None and result > maximum:
        raise ConfigError(f"context {_key(name)} must be <= {maximum}, got {result}")
    return result


def _as_optional_str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def parse_settings(value: Any) -> dict[str, str]:
    """``txnpipe:settings`` (an object, or its JSON text) as TXNPIPE_<NAME> environment values."""
    if value in (None, ""):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"context {_key('settings')} is not a JSON object: {exc}") from None
    if not isinstance(value, Mapping):
        raise ConfigError(f"context {_key('settings')} must be an object, got {value!r}")
    env: dict[str, str] = {}
    for name, raw in value.items():
        if name not in SETTING_NAMES:
            raise ConfigError(
                f"context {_key('settings')} has unknown setting {name!r}; "
                f"known settings: {', '.join(SETTING_NAMES)}"
            )
        if isinstance(raw, bool) or raw is None:
            raise ConfigError(f"setting {name} must be a number, got {raw!r}")
        try:
            number = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"setting {name} must be a number, got {raw!r}") from None
        if not math.isfinite(number):
            raise ConfigError(f"setting {name} must be finite, got {raw!r}")
        if name in INTEGER_SETTINGS:
            if not number.is_integer():
                raise ConfigError(f"setting {name} must be an integer, got {raw!r}")
            env[name] = str(int(number))
        else:
            env[name] = str(raw).strip() if isinstance(raw, str) else repr(float(raw))
    return {ENV.setting(name): text for name, text in sorted(env.items())}


@dataclass(frozen=True)
class TxnPipeConfig:
    stack_name: str = DEFAULTS["stackName"]
    account: str | None = None
    region: str | None = None
    nag: bool = True
    retain: bool = True
    bucket_name: str | None = None
    inputs_prefix: str = DEFAULTS["inputsPrefix"]
    vpc_cidr: str = DEFAULTS["vpcCidr"]
    max_azs: int = DEFAULTS["maxAzs"]
    db_name: str = DEFAULTS["dbName"]
    db_username: str = DEFAULTS["dbUsername"]
    db_engine_version: str = DEFAULTS["dbEngineVersion"]
    db_instance_type: str = PROFILES["prod"]["dbInstanceType"]
    db_allocated_storage_gib: int = DEFAULTS["dbAllocatedStorageGiB"]
    db_max_allocated_storage_gib: int = DEFAULTS["dbMaxAllocatedStorageGiB"]
    db_multi_az: bool = PROFILES["prod"]["dbMultiAz"]
    db_backup_retention_days: int = PROFILES["prod"]["dbBackupRetentionDays"]
    endpoint_azs: int = 0  # the AZs with interface endpoints (0: every AZ of the VPC)
    profile: str = DEFAULTS["profile"]
    schedule_enabled: bool = DEFAULTS["scheduleEnabled"]
    run_seconds: int = DEFAULTS["runSeconds"]
    chunker_timeout_seconds: int = DEFAULTS["chunkerTimeoutSeconds"]
    chunker_memory_mib: int = DEFAULTS["chunkerMemoryMiB"]
    chunker_reserved_concurrency: int = DEFAULTS["chunkerReservedConcurrency"]
    detector_timeout_seconds: int = DEFAULTS["detectorTimeoutSeconds"]
    detector_memory_mib: int = DEFAULTS["detectorMemoryMiB"]
    detector_reserved_concurrency: int = DEFAULTS["detectorReservedConcurrency"]
    upgrade_engine: str = DEFAULTS["upgradeEngine"]
    glue_job_name: str = ""
    glue_worker_type: str = DEFAULTS["glueWorkerType"]
    glue_number_of_workers: int = DEFAULTS["glueNumberOfWorkers"]
    glue_timeout_minutes: int = DEFAULTS["glueTimeoutMinutes"]
    glue_max_concurrent_runs: int = DEFAULTS["glueMaxConcurrentRuns"]
    log_retention_days: int = DEFAULTS["logRetentionDays"]
    # chunks/, glue/ and athena/ expire after this many days; detections/ and rejects/ only
    # if outputs_expiration_days is set
    scratch_expiration_days: int = DEFAULTS["scratchExpirationDays"]
    outputs_expiration_days: int | None = None
    alarm_topic_arn: str | None = None
    local_invoke: bool = False
    settings_env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.glue_job_name:
            object.__setattr__(self, "glue_job_name", f"{self.stack_name}-upgrade-percentiles")
        self._validate()

    # -- reading --------------------------------------------------------------------------
    @classmethod
    def from_context(cls, node: Node) -> TxnPipeConfig:
        given = {name: node.try_get_context(_key(name)) for name in (*DEFAULTS, *REMOVED)}
        return cls.from_mapping({name: value for name, value in given.items()
                                 if name in DEFAULTS or value is not None})  # fmt: skip

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> TxnPipeConfig:
        """Build from un-prefixed context names; missing or ``None`` values take the default."""
        for name in sorted(set(raw) & set(REMOVED)):
            raise ConfigError(f"context {_key(name)} is gone: {REMOVED[name]}")
        unknown = set(raw) - set(DEFAULTS)
        if unknown:
            raise ConfigError(
                f"unknown context keys: {', '.join(sorted(_key(k) for k in unknown))}"
            )

        profile = str(raw.get("profile") or DEFAULTS["profile"]).strip().lower()
        if profile not in PROFILES:
            raise ConfigError(f"context {_key('profile')} must be one of "
                              f"{', '.join(PROFILES)}, got {profile!r}")  # fmt: skip

        def get(name: str) -> Any:
            value = raw.get(name)
            if value is None:
                value = PROFILES[profile].get(name, DEFAULTS[name])
            return value

        removal = str(get("removalPolicy")).strip().lower()
        if removal not in ("retain", "destroy"):
            raise ConfigError(
                f"context {_key('removalPolicy')} must be retain or destroy, got {removal!r}"
            )
        return cls(
            stack_name=str(get("stackName")).strip(),
            account=_as_optional_str(get("account")),
            region=_as_optional_str(get("region")),
            nag=_as_bool("nag", get("nag")),
            profile=profile,
            retain=removal == "retain",
            bucket_name=_as_optional_str(get("bucketName")),
            inputs_prefix=str(get("inputsPrefix")).strip(),
            vpc_cidr=str(get("vpcCidr")).strip(),
            max_azs=_as_int("maxAzs", get("maxAzs"), minimum=2, maximum=6),
            db_name=str(get("dbName")).strip(),
            db_username=str(get("dbUsername")).strip(),
            db_engine_version=str(get("dbEngineVersion")).strip(),
            db_instance_type=str(get("dbInstanceType")).strip(),
            db_allocated_storage_gib=_as_int(
                "dbAllocatedStorageGiB", get("dbAllocatedStorageGiB"), minimum=20
            ),
            db_max_allocated_storage_gib=_as_int(
                "dbMaxAllocatedStorageGiB", get("dbMaxAllocatedStorageGiB"), minimum=20
            ),
            db_multi_az=_as_bool("dbMultiAz", get("dbMultiAz")),
            endpoint_azs=_as_int("endpointAzs", get("endpointAzs"), minimum=0, maximum=6),
            db_backup_retention_days=_as_int(
                "dbBackupRetentionDays", get("dbBackupRetentionDays"), minimum=1, maximum=35
            ),
            schedule_enabled=_as_bool("scheduleEnabled", get("scheduleEnabled")),
            run_seconds=_as_int("runSeconds", get("runSeconds"), minimum=1, maximum=840),
            chunker_timeout_seconds=_as_int(
                "chunkerTimeoutSeconds", get("chunkerTimeoutSeconds"), minimum=10, maximum=900
            ),
            chunker_memory_mib=_as_int(
                "chunkerMemoryMiB", get("chunkerMemoryMiB"), minimum=128, maximum=10240
            ),
            chunker_reserved_concurrency=_as_int(
                "chunkerReservedConcurrency",
                get("chunkerReservedConcurrency"),
                minimum=0,
                maximum=1,
            ),
            detector_timeout_seconds=_as_int(
                "detectorTimeoutSeconds", get("detectorTimeoutSeconds"), minimum=10, maximum=900
            ),
            detector_memory_mib=_as_int(
                "detectorMemoryMiB", get("detectorMemoryMiB"), minimum=128, maximum=10240
            ),
            detector_reserved_concurrency=_as_int(
                "detectorReservedConcurrency", get("detectorReservedConcurrency"), minimum=0
            ),
            upgrade_engine=str(get("upgradeEngine")).strip().lower(),
            glue_job_name=_as_optional_str(get("glueJobName")) or "",
            glue_worker_type=str(get("glueWorkerType")).strip(),
            glue_number_of_workers=_as_int(
                "glueNumberOfWorkers", get("glueNumberOfWorkers"), minimum=2
            ),
            glue_timeout_minutes=_as_int(
                "glueTimeoutMinutes", get("glueTimeoutMinutes"), minimum=1, maximum=2880
            ),
            glue_max_concurrent_runs=_as_int(
                "glueMaxConcurrentRuns", get("glueMaxConcurrentRuns"), minimum=1
            ),
            log_retention_days=_as_int("logRetentionDays", get("logRetentionDays"), minimum=1),
            scratch_expiration_days=_as_int("scratchExpirationDays", get("scratchExpirationDays"),
                                            minimum=1),
            outputs_expiration_days=None if get("outputsExpirationDays") is None else _as_int(
                "outputsExpirationDays", get("outputsExpirationDays"), minimum=1),
            alarm_topic_arn=_as_optional_str(get("alarmTopicArn")),
            local_invoke=_as_bool("localInvoke", get("localInvoke")),
            settings_env=parse_settings(get("settings")),
        )

    # -- checks ---------------------------------------------------------------------------
    def _validate(self) -> None:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,60}", self.stack_name):
            raise ConfigError(
                f"context {_key('stackName')} is not a valid stack name: {self.stack_name!r}"
            )
        if not self.inputs_prefix.endswith("/") or self.inputs_prefix.startswith("/"):
            raise ConfigError(
                f"context {_key('inputsPrefix')} must look like 'inputs/', got {self.inputs_prefix!r}"
            )
        reserved = (CHUNKS_PREFIX, DETECTIONS_PREFIX, REJECTS_PREFIX, GLUE_PREFIX, ATHENA_PREFIX)
        if any(
            self.inputs_prefix.startswith(p) or p.startswith(self.inputs_prefix) for p in reserved
        ):
            raise ConfigError(
                f"context {_key('inputsPrefix')} overlaps an output prefix: {self.inputs_prefix!r}"
            )
        if self.upgrade_engine not in UPGRADE_ENGINES:
            raise ConfigError(
                f"context {_key('upgradeEngine')} must be one of {', '.join(UPGRADE_ENGINES)}, "
                f"got {self.upgrade_engine!r}"
            )
        if self.glue_worker_type not in GLUE_WORKER_TYPES:
            raise ConfigError(
                f"context {_key('glueWorkerType')} is not a Glue 5.0 worker type: {self.glue_worker_type!r}"
            )
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,255}", self.glue_job_name):
            raise ConfigError(
                f"context {_key('glueJobName')} is not a valid Glue job name: {self.glue_job_name!r}"
            )
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,62}", self.db_name):
            raise ConfigError(
                f"context {_key('dbName')} is not a valid PostgreSQL database name: {self.db_name!r}"
            )
        if not re.fullmatch(
            r"[A-Za-z][A-Za-z0-9_]{0,15}", self.db_username
        ) or self.db_username.lower() in ("postgres", "rdsadmin", "admin"):
            raise ConfigError(f"context {_key('dbUsername')} is not allowed: {self.db_username!r}")
        if not re.fullmatch(r"16\.\d+", self.db_engine_version):
            raise ConfigError(
                f"context {_key('dbEngineVersion')} must be a PostgreSQL 16 minor version such as "
                f"16.13, got {self.db_engine_version!r}"
            )
        if self.db_max_allocated_storage_gib < self.db_allocated_storage_gib:
            raise ConfigError(
                "context txnpipe:dbMaxAllocatedStorageGiB is below txnpipe:dbAllocatedStorageGiB"
            )
        # The chunker paces itself for run_seconds, then needs time to finish the chunk in hand.
        if self.chunker_timeout_seconds < self.run_seconds + 10:
            raise ConfigError(
                f"context {_key('chunkerTimeoutSeconds')} ({self.chunker_timeout_seconds}) must be at "
                f"least {_key('runSeconds')} + 10 ({self.run_seconds + 10})"
            )

    # -- derived --------------------------------------------------------------------------
    @property
    def inputs(self) -> InputPrefixes:
        return InputPrefixes(self.inputs_prefix)

    @property
    def transactions_prefix(self) -> str:
        """Where the transactions files go, a stream each: only the chunker may read them."""
        return self.inputs.transactions

    @property
    def importance_prefix(self) -> str:
        """Where the importance files go: only the detector (and the Glue job) may read them;
        the chunker lists their versions when it registers a stream."""
        return self.inputs.importance

    @property
    def catalog_database(self) -> str:
        """The Glue Data Catalog database of the query tables (lower case, as Glue keeps it)."""
        return re.sub(r"[^a-z0-9_]", "_", self.stack_name.lower())

    @property
    def uses_glue(self) -> bool:
        """Only the ``spark`` engine deploys the Glue job, its role, key, rule and endpoint."""
        return self.upgrade_engine == "spark"

    def powertools_env(self, service: str) -> dict[str, str]:
        """Powertools' settings for one function (the code defaults to the same values)."""
        return {
            "POWERTOOLS_SERVICE_NAME": service,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        }

    @property
    def local_invoke_env(self) -> dict[str, str]:
        """Empty placeholders that ``sam local invoke --env-vars`` may fill (SAM only overrides
        variables the template declares); the core treats an empty value as unset."""
        if not self.local_invoke:
            return {}
        return {ENV.DATABASE_URL: "", "TXNPIPE_S3_ENDPOINT": ""}

    @property
    def environment(self) -> dict[str, str] | None:
        """The stack's account/region, only if context gave them (else environment-agnostic)."""
        env = {k: v for k, v in (("account", self.account), ("region", self.region)) if v}
        return env or None
