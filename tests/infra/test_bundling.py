"""Lambda bundles built locally with pip (no Docker)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from infra import bundling
from tests.infra.synth import REPO, synthesize

LIMIT_BYTES = 200 * 1024 * 1024  # Lambda allows 250 MB unzipped; keep a margin


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def zipped_size(root: Path, target: Path) -> int:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(root))
    return target.stat().st_size


def test_pip_command_targets_the_lambda_platform(tmp_path: Path) -> None:
    command = bundling.pip_command(tmp_path, ["psycopg[binary]==3.3.9"], python="python3")
    assert command[:6] == ["python3", "-m", "pip", "install", "--target", str(tmp_path)]
    joined = " ".join(command)
    for part in (
        "--platform manylinux2014_x86_64",
        "--platform manylinux_2_28_x86_64",
        "--only-binary=:all:",
        "--python-version 3.12",
        "--implementation cp",
    ):
        assert part in joined
    assert command[-1] == "psycopg[binary]==3.3.9"
    assert bundling.read_requirements() == (
        "psycopg[binary]==3.3.9",
        "aws-lambda-powertools==3.37.0",
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
    (core / "rules.py").write_text("y = 2\n")
    assert bundler.fingerprint() != first
    second = bundler.fingerprint()
    handler.write_text("def handler(e, c): return 1\n")
    assert bundler.fingerprint() != second


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
        assert (bundle / "txnpipe" / "entry.py").is_file()
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
        unzipped = tree_size(bundle)
        assert unzipped < LIMIT_BYTES, f"{folder} bundle is {unzipped / 1e6:.1f} MB unzipped"
        sizes[folder] = (unzipped, zipped_size(bundle, tmp_path / f"{folder}.zip"))
    with capsys.disabled():
        for folder, (unzipped, zipped) in sizes.items():
            print(
                f"\n{folder} bundle: {unzipped / 1e6:.1f} MB unzipped, {zipped / 1e6:.1f} MB zipped",
                end="",
            )
