"""Glue, locally: moto serves the Glue API and the real job script runs on local PySpark.

Each started run is executed over a mirror of the bucket, and its Parquet output is put where
Glue would write it, so the detector's Glue adapter reads what the job really produces.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.functional.pipeline_kit import Kit

SCRIPT = Path(__file__).parents[2] / "glue_jobs" / "upgrade_percentiles.py"


def _job_module() -> ModuleType:
    name = "upgrade_percentiles_under_test"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SCRIPT)
        assert spec is not None and spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


class GlueRunningLocally:
    """moto's Glue API; ``start_job_run`` also runs the job on local Spark, as Glue would."""

    def __init__(self, glue: Any, kit: Kit, workdir: Path) -> None:
        self.glue, self.kit, self.workdir = glue, kit, workdir
        self.runs: list[dict[str, str]] = []

    def start_job_run(self, JobName: str, Arguments: dict[str, str]) -> dict[str, str]:
        run_job(self.kit, Arguments, self.workdir)
        self.runs.append(Arguments)
        return self.glue.start_job_run(JobName=JobName, Arguments=Arguments)

    def get_job_run(self, **kwargs: Any) -> Any:
        return self.glue.get_job_run(**kwargs)


def run_job(kit: Kit, arguments: dict[str, str], workdir: Path) -> None:
    """Run the Glue job script for ``arguments`` and put its output in the bucket."""
    store = kit.store
    for key in store.keys("chunks/") + [kit.importance_key]:
        (workdir / key).parent.mkdir(parents=True, exist_ok=True)
        (workdir / key).write_bytes(store.get(key))
    argv = [arg for pair in arguments.items() for arg in pair]
    argv += ["--txnpipe_bucket", store.bucket, "--txnpipe_base_uri", workdir.as_uri() + "/",
             "--txnpipe_importance_key", kit.importance_key]  # fmt: skip
    argv += [arg for k, v in kit.settings.as_dict().items() for arg in (f"--txnpipe_{k}", str(v))]
    target = Path(_job_module().main(argv).removeprefix("file:"))
    for part in target.glob("*.parquet"):
        store.put(str(part.relative_to(workdir)), part.read_bytes())
