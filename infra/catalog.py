"""Detections people can query: a Glue Data Catalog database with the tables ``detections``
and ``rejects`` over the data bucket, and an Athena workgroup to query them.

The tables are the ones ``txnpipe query`` builds over a run folder (``txnpipe.core.tables``):
CSV with a header line, every column text, partitioned by ``source`` (the stream's folder)
through partition projection of type ``injected``: a new stream is queryable the moment its
first file lands, and no crawler runs (or costs). The workgroup enforces its result location
(``athena/`` in the data bucket, SSE-S3, expiring with the scratch data) and a cap on the bytes
a query may scan.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from constructs import Construct

from infra.config import ATHENA_PREFIX, TxnPipeConfig
from infra.storage import Storage
from txnpipe.core.tables import PARTITION, TABLES, Table

# A query that would scan more is cancelled (50 GiB, about $0.27 at Athena's list price).
BYTES_SCANNED_CUTOFF = 50 * 1024**3
_OPEN_CSV_SERDE = "org.apache.hadoop.hive.serde2.OpenCSVSerde"


class QueryCatalog(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: TxnPipeConfig,
                 storage: Storage) -> None:  # fmt: skip
        super().__init__(scope, construct_id)
        account = cdk.Stack.of(self).account
        self.database_name = config.catalog_database
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name,
                description="txnpipe: the detections and rejects of every stream",
            ),
        )
        bucket = storage.bucket.bucket_name
        self.tables: dict[str, glue.CfnTable] = {}
        for table in TABLES:
            cfn = glue.CfnTable(self, table.name.capitalize(), catalog_id=account,
                                database_name=self.database_name,
                                table_input=_table_input(table, bucket))  # fmt: skip
            cfn.node.add_dependency(self.database)
            self.tables[table.name] = cfn

        self.work_group = athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=config.stack_name,
            description="txnpipe: queries over the detections and rejects tables",
            recursive_delete_option=not config.retain,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=BYTES_SCANNED_CUTOFF,
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{bucket}/{ATHENA_PREFIX}",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                ),
            ),
        )


def _table_input(table: Table, bucket: str) -> glue.CfnTable.TableInputProperty:
    location = f"s3://{bucket}/{table.prefix}"
    return glue.CfnTable.TableInputProperty(
        name=table.name,
        description=f"txnpipe {table.name} files (CSV with a header line), one folder per stream",
        table_type="EXTERNAL_TABLE",
        parameters={
            "classification": "csv",
            "skip.header.line.count": "1",
            "projection.enabled": "true",
            f"projection.{PARTITION}.type": "injected",
            "storage.location.template": f"{location}${{{PARTITION}}}/",
        },
        partition_keys=[glue.CfnTable.ColumnProperty(name=PARTITION, type="string")],
        storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
            location=location,
            columns=[glue.CfnTable.ColumnProperty(name=c.lower(), type="string")
                     for c in table.columns],
            input_format="org.apache.hadoop.mapred.TextInputFormat",
            output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
            serde_info=glue.CfnTable.SerdeInfoProperty(
                serialization_library=_OPEN_CSV_SERDE,
                # as csv.writer writes: "," between fields, '"' around a field that needs it
                parameters={"separatorChar": ",", "quoteChar": '"'},
            ),
        ),
    )
