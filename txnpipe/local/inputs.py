"""The local input files, checked before anything starts (SPEC 5: exit 2 on bad input)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from txnpipe.core.csvscan import BOM, scan_records
from txnpipe.core.errors import TxnpipeError
from txnpipe.core.keys import source_name
from txnpipe.core.layouts import check_header_line, importance_layout, transactions_layout

_HEAD = 1 << 20


def _header(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as f:
            head = f.read(_HEAD)
    except FileNotFoundError:
        raise TxnpipeError(f"{what} file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise TxnpipeError(f"{what} file {str(path)!r} is a directory") from None
    except OSError as exc:
        raise TxnpipeError(f"{what} file {str(path)!r} cannot be read: {exc.strerror}") from None
    head = head.removeprefix(BOM)
    if not head.strip():
        raise TxnpipeError(f"{what} file {str(path)!r} is empty")
    scan = scan_records(head, eof=len(head) < _HEAD, limit=1)
    header = scan.records[0] if scan.records else head
    try:  # only the header line decides whether this is text at all (SPEC 2.2)
        check_header_line(header)
    except TxnpipeError as exc:
        raise TxnpipeError(f"{what} file {str(path)!r} {exc}") from None
    if not scan.records:
        raise TxnpipeError(f"{what} file {str(path)!r}: header line is longer than 1 MiB")
    return header


@dataclass(frozen=True)
class StreamInput:
    """One transactions file: a stream, named by its source (SPEC 3)."""

    path: Path
    source: str
    size: int

    def estimated_chunks(self, chunk_rows: int) -> int:
        """Lines over chunk size: exact for files without quoted line breaks or empty lines."""
        with self.path.open("rb") as f:
            lines = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 22), b""))
        return max(1, -(-max(lines - 1, 0) // chunk_rows))


@dataclass(frozen=True)
class InputFiles:
    streams: tuple[StreamInput, ...]
    importance: Path

    @classmethod
    def check(cls, transactions: Path | Sequence[Path], importance: Path) -> InputFiles:
        paths = [transactions] if isinstance(transactions, Path) else list(transactions)
        streams: dict[str, StreamInput] = {}
        for path in paths:
            source = source_name(path.name)
            transactions_layout(_header(path, "transactions"))
            if source in streams:
                raise TxnpipeError(
                    f"transactions files {str(streams[source].path)!r} and {str(path)!r} have "
                    f"the same source name {source!r}; rename one"
                )
            streams[source] = StreamInput(path, source, path.stat().st_size)
        importance_layout(_header(importance, "importance"))
        return cls(tuple(streams.values()), importance)

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(s.source for s in self.streams)
