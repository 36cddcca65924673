"""The Glue PySpark job behind the UpgradeEngine seam (SPEC 4.4 on AWS).

``start`` starts a job run for one range of evaluation points; the run's completion reaches
the detector as an EventBridge "Glue Job State Change" event, and ``result`` then reads the
candidates the job wrote as Parquet under ``glue/<source>/upgrade_<first>_<last>/``.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from txnpipe.core.ports import Candidate, UpgradeRun

_RUNNING = {"STARTING", "RUNNING", "STOPPING", "WAITING"}


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def output_prefix(prefix: str, source: str, first: int, last: int) -> str:
    """Where the job writes a range's candidates (the same rule as the job's ``output_uri``)."""
    return f"{prefix}{source}/upgrade_{first:06d}_{last:06d}/"


@dataclass(frozen=True)
class GlueUpgradeEngine:
    glue: Any
    s3: Any
    bucket: str
    job_name: str
    prefix: str = "glue/"

    def start(self, source: str, first: int, last: int, importance_key: str) -> UpgradeRun | None:
        """Start a run; when Glue refuses (the job's concurrent runs are in flight), adopt
        the one of this source and range if it is among them (a detector that started it
        died before recording it), else report the engine busy (None): never fail."""
        arguments = {"--txnpipe_source": source, "--txnpipe_first": str(first),
                     "--txnpipe_last": str(last), "--txnpipe_importance_key": importance_key}  # fmt: skip
        try:
            response = self.glue.start_job_run(JobName=self.job_name, Arguments=arguments)
        except Exception as exc:  # botocore's modelled error, from whichever client
            if _error_code(exc) != "ConcurrentRunsExceededException":
                raise
            return self._in_flight(source, first)
        return UpgradeRun(str(response["JobRunId"]), first, last)

    def _in_flight(self, source: str, first: int) -> UpgradeRun | None:
        """This source's run in flight that starts at ``first``, if any."""
        pages = self.glue.get_paginator("get_job_runs").paginate(JobName=self.job_name)
        for page in pages:
            for run in page.get("JobRuns", []):
                args = run.get("Arguments", {})
                if (run.get("JobRunState") in _RUNNING and args.get("--txnpipe_source") == source
                        and args.get("--txnpipe_first") == str(first)):  # fmt: skip
                    return UpgradeRun(str(run["Id"]), first, int(args["--txnpipe_last"]))
        return None

    def result(self, source: str, run: UpgradeRun) -> list[Candidate] | None:
        state = self.glue.get_job_run(JobName=self.job_name, RunId=run.run_id)["JobRun"]
        status = state["JobRunState"]
        if status in _RUNNING:
            return None
        if status != "SUCCEEDED":
            raise RuntimeError(f"Glue run {run.run_id} ended {status}: {state.get('ErrorMessage')}")
        import pyarrow.parquet as pq  # only the batch-engine deployment bundles pyarrow

        prefix = output_prefix(self.prefix, source, run.first, run.last)
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        parts = sorted(o["Key"] for page in pages for o in page.get("Contents", [])
                       if o["Key"].endswith(".parquet"))  # fmt: skip
        if not parts:  # the job always writes a file, even an empty one
            raise RuntimeError(f"Glue run {run.run_id} succeeded but wrote nothing under {prefix}")
        candidates: list[Candidate] = []
        for key in parts:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            table = pq.read_table(io.BytesIO(body), columns=["chunk", "merchant", "customer"])
            candidates += [(int(k), m, c) for k, m, c in zip(*table.to_pydict().values())]
        return candidates
