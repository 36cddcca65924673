"""Lambda packaging without Docker.

Each function's bundle is: the wheels of its requirements for the Lambda platform (CPython
3.12 on x86_64 Linux, fetched by ``pip --platform ... --only-binary=:all:`` so that no
compiler or container is needed), the core package ``txnpipe/`` and the function's
``handler.py`` at the root (handler ``handler.handler``). boto3 comes with the runtime.

CDK asks :class:`LocalPipBundling` first; it always bundles (or raises), so the Docker image
that ``BundlingOptions`` requires is never pulled. The asset hash is computed here, over
exactly what goes into the bundle, so a change to the core redeploys both functions while an
unchanged tree never does (pip's output is not byte-stable, so hashing the output would).

The detector's bundle carries ``pyarrow`` as well when PatId1 runs on the Glue job
(``txnpipe:upgradeEngine=spark``: the Glue adapter reads the job's Parquet output); with the
default ``inline`` engine it does not, and both bundles stay small.

Each bundle also carries one CA bundle under ``certs/`` (committed in ``infra/certs/``, see the
README there), the roots its database connection verifies with ``sslmode=verify-full``: the
Amazon Trust Services roots for the chunker and the detector (RDS Proxy presents ACM
certificates), the RDS CA bundle for the migrator (it connects to the instance itself).

The Glue job itself gets the core package as a zip for ``--extra-py-files``
(:func:`write_core_zip`): built here with the standard library, byte for byte the same from
the same sources (sorted entries, fixed timestamps and modes, stored uncompressed), so its
asset hash only changes when the core does.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CORE_DIR = PROJECT_ROOT / "txnpipe"
LAMBDAS_DIR = PROJECT_ROOT / "lambdas"
# Locks (`make lock` compiles each from its .in file at uv.lock's versions for the Lambda
# platform, with hashes): the chunker's and the detector's packages, ...
REQUIREMENTS_FILE = Path(__file__).resolve().parent / "lambda_requirements.txt"
# ... the detector's when PatId1 runs on the Glue job (upgradeEngine=spark: the same plus
# pyarrow), and the migrator's (psycopg only).
SPARK_REQUIREMENTS_FILE = Path(__file__).resolve().parent / "lambda_requirements_spark.txt"
MIGRATOR_REQUIREMENTS_FILE = Path(__file__).resolve().parent / "lambda_requirements_migrator.txt"

PYTHON_VERSION = "3.12"
RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.X86_64
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")
# Required by BundlingOptions, never pulled: local bundling always succeeds or raises.
UNUSED_DOCKER_IMAGE = "public.ecr.aws/sam/build-python3.12"
# Bump when the layout of a bundle changes, to force new asset hashes.
BUNDLE_FORMAT = "txnpipe-local-bundle-2"

# CA bundles (infra/certs/README.md says where each comes from and how to refresh it).
CERTS_DIR = Path(__file__).resolve().parent / "certs"
AMAZON_TRUST_ROOTS = CERTS_DIR / "amazon-trust-roots.pem"  # RDS Proxy (ACM certificates)
RDS_CA_BUNDLE = CERTS_DIR / "rds-global-bundle.pem"  # the RDS instance itself
# Where a bundle's CA file lands, relative to its root, and where Lambda puts that root.
BUNDLE_CERTS_DIR = "certs"
LAMBDA_TASK_ROOT = "/var/task"


def sslrootcert_path(ca_bundle: Path) -> str:
    """The absolute path, inside a running function, of ``ca_bundle`` shipped in its bundle
    (the value of ``TXNPIPE_DB_SSLROOTCERT``)."""
    return f"{LAMBDA_TASK_ROOT}/{BUNDLE_CERTS_DIR}/{Path(ca_bundle).name}"




class BundlingError(RuntimeError):
    pass


def read_requirements(path: Path = REQUIREMENTS_FILE) -> tuple[str, ...]:
    """The requirements of a lock file, one per package: ``name==version --hash=... ...``
    (continued lines joined, comments dropped)."""
    logical = path.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = (" ".join(line.split("#", 1)[0].split()) for line in logical.splitlines())
    return tuple(line for line in lines if line)


def detector_requirements(upgrade_engine: str) -> tuple[str, ...]:
    """The detector's packages: the shared lock, or for the ``spark`` engine its own lock (the
    same packages plus pyarrow)."""
    lock = SPARK_REQUIREMENTS_FILE if upgrade_engine == "spark" else REQUIREMENTS_FILE
    return read_requirements(lock)


def migrator_requirements() -> tuple[str, ...]:
    """The migrator's packages: only psycopg, at the shared pin (it runs once per deploy and
    logs one plain line, so no Powertools)."""
    return read_requirements(MIGRATOR_REQUIREMENTS_FILE)


def pip_command(target: Path, requirements_file: Path, python: str = sys.executable,
                python_version: str = PYTHON_VERSION) -> list[str]:  # fmt: skip
    """The pip invocation that installs the locked Lambda-platform wheels of
    ``requirements_file`` (every package pinned with its hashes) into ``target``.

    ``python_version`` other than the runtime's builds the same bundle for another CPython
    (the smoke test's, for the host): the same pins, without the hashes, which are those of
    the runtime's wheels."""
    command = [python, "-m", "pip", "install", "--target", str(target)]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    command += [
        "--only-binary=:all:",
        "--python-version",
        python_version,
        "--implementation",
        "cp",
        "--no-compile",  # the host's .pyc would not match the 3.12 runtime
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
        # exactly the lock: no resolution on the host, every file checked against its hash
        "--no-deps",
        *(["--require-hashes"] if python_version == PYTHON_VERSION else []),
    ]
    return command + ["-r", str(requirements_file)]


def _without_hashes(requirement: str) -> str:
    return " ".join(part for part in requirement.split() if not part.startswith("--hash="))


# The subpackages of txnpipe/ each deployed artifact imports at run time: a Lambda the core,
# the PostgreSQL adapter and the AWS entry points; the Glue job the core and the batch
# engines. The tools (generate, report, cli) and the local stand-ins are never shipped.
FUNCTION_SUBPACKAGES = ("core", "postgres", "aws")
GLUE_SUBPACKAGES = ("core", "batch")
_TOP_LEVEL_FILES = ("__init__.py",)


def package_files(core_dir: Path, subpackages: Sequence[str]) -> list[Path]:
    """The package's own ``__init__.py`` and every source file of ``subpackages``."""
    files = [core_dir / name for name in _TOP_LEVEL_FILES if (core_dir / name).is_file()]
    for sub in subpackages:
        files += _source_files(core_dir / sub)
    return sorted(files)


def _source_files(directory: Path) -> Iterable[Path]:
    for path in sorted(directory.rglob("*")):
        if not path.is_file():
            continue
        relative = path.relative_to(directory)
        if any(part == "__pycache__" or part.startswith(".") for part in relative.parts):
            continue
        if path.suffix in (".pyc", ".pyo"):
            continue
        yield path


@jsii.implements(cdk.ILocalBundling)
class LocalPipBundling:
    """``ILocalBundling`` that builds one function's bundle with pip and file copies."""

    def __init__(
        self,
        handler_file: Path,
        *,
        core_dir: Path = CORE_DIR,
        requirements: Sequence[str] | None = None,
        ca_bundle: Path | None = None,
        python: str = sys.executable,
        subpackages: Sequence[str] = FUNCTION_SUBPACKAGES,
        python_version: str = PYTHON_VERSION,
    ) -> None:
        """``ca_bundle``: a PEM file copied to ``certs/<name>`` in the bundle (or none)."""
        self.handler_file = Path(handler_file)
        self.core_dir = Path(core_dir)
        self.subpackages = tuple(subpackages)
        self.python_version = python_version
        self.requirements = tuple(read_requirements() if requirements is None else requirements)
        self.ca_bundle = None if ca_bundle is None else Path(ca_bundle)
        self.python = python

    # CDK calls this (through jsii) with the output directory and the bundling options.
    def try_bundle(self, output_dir: str, options: Any = None, **_: Any) -> bool:
        self.bundle_into(Path(output_dir))
        return True

    def bundle_into(self, output_dir: Path) -> Path:
        if not self.handler_file.is_file():
            raise BundlingError(f"handler not found: {self.handler_file}")
        if not (self.core_dir / "__init__.py").is_file():
            raise BundlingError(f"core package not found: {self.core_dir} has no __init__.py")
        if self.ca_bundle is not None and not self.ca_bundle.is_file():
            raise BundlingError(f"CA bundle not found: {self.ca_bundle}")
        output_dir.mkdir(parents=True, exist_ok=True)
        if self.requirements:
            with tempfile.TemporaryDirectory(prefix="txnpipe-bundle-") as scratch:
                requirements_file = Path(scratch) / "requirements.txt"
                lines = (self.requirements if self.python_version == PYTHON_VERSION
                         else [_without_hashes(r) for r in self.requirements])  # fmt: skip
                requirements_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
                command = pip_command(output_dir, requirements_file, self.python,
                                      self.python_version)  # fmt: skip
                result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise BundlingError(
                    f"pip failed ({result.returncode}) bundling {self.handler_file}:\n"
                    f"{' '.join(command)}\n{result.stdout}\n{result.stderr}"
                )
        # Console scripts are of no use in Lambda and would shadow nothing but take space.
        shutil.rmtree(output_dir / "bin", ignore_errors=True)
        core_target = output_dir / self.core_dir.name
        if core_target.exists():
            raise BundlingError(f"a requirement installed a package named {self.core_dir.name!r}")
        for path in package_files(self.core_dir, self.subpackages):
            target = core_target / path.relative_to(self.core_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        shutil.copy2(self.handler_file, output_dir / "handler.py")
        if self.ca_bundle is not None:
            certs = output_dir / BUNDLE_CERTS_DIR
            if certs.exists():
                raise BundlingError(f"a requirement installed a top-level {BUNDLE_CERTS_DIR!r}")
            certs.mkdir()
            shutil.copyfile(self.ca_bundle, certs / self.ca_bundle.name)
        for cache in list(output_dir.rglob("__pycache__")):
            shutil.rmtree(cache, ignore_errors=True)
        return output_dir

    def fingerprint(self) -> str:
        """Hash of everything that decides the bundle's content."""
        digest = hashlib.sha256()

        def add(label: str, data: bytes) -> None:
            digest.update(label.encode())
            digest.update(len(data).to_bytes(8, "big"))
            digest.update(data)

        add("format", BUNDLE_FORMAT.encode())
        add("python", PYTHON_VERSION.encode())
        add("platforms", "\n".join(PLATFORMS).encode())
        add("requirements", "\n".join(self.requirements).encode())
        add("handler", self.handler_file.read_bytes() if self.handler_file.is_file() else b"")
        if self.ca_bundle is not None:
            data = self.ca_bundle.read_bytes() if self.ca_bundle.is_file() else b""
            add("ca:" + self.ca_bundle.name, data)
        if self.core_dir.is_dir():
            for path in package_files(self.core_dir, self.subpackages):
                add("core:" + path.relative_to(self.core_dir).as_posix(), path.read_bytes())
        return digest.hexdigest()


def function_code(handler_dir: Path, **bundling_kwargs: Any) -> lambda_.Code:
    """``Code`` for a function whose ``handler.py`` is in ``handler_dir``, bundled locally.

    When bundling is skipped (context ``aws:cdk:bundling-stacks`` = ``[]``, as in the unit
    tests), CDK stages ``handler_dir`` as is and nothing is downloaded.
    """
    bundler = LocalPipBundling(Path(handler_dir) / "handler.py", **bundling_kwargs)
    return lambda_.Code.from_asset(
        str(handler_dir),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        asset_hash=bundler.fingerprint(),
        bundling=cdk.BundlingOptions(
            image=cdk.DockerImage.from_registry(UNUSED_DOCKER_IMAGE),
            local=bundler,
            command=[
                "bash",
                "-c",
                "echo 'txnpipe bundles locally with pip; Docker bundling is not supported' >&2; exit 1",
            ],
        ),
    )


# -- the core package as a zip, for Glue's --extra-py-files ---------------------------------

# The earliest time a zip entry can carry; any fixed value makes the archive reproducible.
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
_ZIP_FILE_MODE = 0o100644  # regular file, rw-r--r--


def core_zip_bytes(core_dir: Path = CORE_DIR, subpackages: Sequence[str] = GLUE_SUBPACKAGES) -> bytes:
    """A zip whose root holds the package ``core_dir`` (``txnpipe/...``: the subpackages the
    Glue job imports), byte-reproducible.

    Entries are the package's source files (no ``__pycache__``, compiled or hidden files) in
    sorted order, each with the same timestamp, mode and "made on Unix" marker; they are
    stored, not deflated, so that the bytes do not depend on the host's zlib either (the
    package is a few hundred kilobytes).
    """
    core_dir = Path(core_dir)
    if not (core_dir / "__init__.py").is_file():
        raise BundlingError(f"core package not found: {core_dir} has no __init__.py")
    entries = sorted(
        (f"{core_dir.name}/{path.relative_to(core_dir).as_posix()}", path)
        for path in package_files(core_dir, subpackages)
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, path in entries:
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3  # Unix, whatever the host
            info.external_attr = _ZIP_FILE_MODE << 16
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def write_core_zip(target: Path, core_dir: Path = CORE_DIR) -> Path:
    """Write :func:`core_zip_bytes` to ``target`` (atomically; unchanged bytes stay as they are)."""
    data = core_zip_bytes(core_dir)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_file() and target.read_bytes() == data:
        return target
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    partial.write_bytes(data)
    os.replace(partial, target)
    return target
