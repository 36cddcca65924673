"""Progress and summary for people at a terminal; progress goes to stderr, summary to stdout."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from txnpipe.core.rules import CATALOGUE
from txnpipe.local.runner import Progress as ProgressFn
from txnpipe.local.runner import RunSummary

PATTERNS = [CATALOGUE.label(p)[0] for p in CATALOGUE.patterns]


@contextmanager
def progress_bar() -> Iterator[ProgressFn]:
    """One bar per stream: chunks applied of the chunks its file holds."""
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        tasks: dict[str, object] = {}

        def update(source: str, done: int, total: int | None) -> None:
            if source not in tasks:
                tasks[source] = bar.add_task(f"{source}: chunks applied", total=None)
            bar.update(tasks[source], completed=done, total=max(total or 0, done) or None)  # type: ignore[arg-type]

        yield update


def print_summary(s: RunSummary) -> None:
    table = Table(title="txnpipe run", show_header=True)
    table.add_column("")
    for stream in s.streams:
        table.add_column(stream.source, justify="right")
    rows: list[tuple[str, list[int]]] = [
        ("chunks", [t.chunks for t in s.streams]),
        ("records", [t.records for t in s.streams]),
        ("rejects", [t.rejects for t in s.streams]),
        *((f"detections {p}", [t.detections.get(p, 0) for t in s.streams]) for p in PATTERNS),
        ("detection files", [t.files for t in s.streams]),
        ("importance rows", [t.importance_rows for t in s.streams]),
        ("importance rows skipped", [t.importance_skipped for t in s.streams]),
    ]
    for name, values in rows:
        table.add_row(name, *(f"{v:,}" for v in values))
    Console().print(table)
    facts = Table(show_header=False, box=None)
    if s.chaos is not None:
        c = s.chaos
        for name, n in (("duplicated", c.duplicated), ("reordered", c.reordered),
                        ("delayed", c.delayed), ("lost", c.lost)):  # fmt: skip
            facts.add_row(f"chaos: events {name}", f"{n:,}")
        for point, n in sorted(c.crashes.items()):
            facts.add_row(f"chaos: crashes at {point}", f"{n:,}")
        facts.add_row("chaos: PostgreSQL restarts", f"{c.restarts:,}")
    facts.add_row("time", f"{s.seconds:.1f} s")
    facts.add_row("output", str(s.out))
    Console().print(facts)
