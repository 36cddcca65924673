"""Progress and summary for people at a terminal; progress goes to stderr, summary to stdout."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from txnpipe.local.runner import Progress as ProgressFn
from txnpipe.local.runner import RunSummary


@contextmanager
def progress_bar() -> Iterator[ProgressFn]:
    console = Console(stderr=True)
    with Progress(
        TextColumn("chunks applied"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task("detector", total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=max(total or 0, done) or None)

        yield update


def print_summary(s: RunSummary) -> None:
    table = Table(title=f"txnpipe run: {s.source}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("chunks", f"{s.chunks:,}")
    table.add_row("records", f"{s.records:,}")
    table.add_row("rejects", f"{s.rejects:,}")
    for pattern in ("PatId1", "PatId2", "PatId3"):
        table.add_row(f"detections {pattern}", f"{s.detections.get(pattern, 0):,}")
    table.add_row("detection files", f"{s.files:,}")
    if s.chaos is not None:
        c = s.chaos
        table.add_row("chaos: events duplicated", f"{c.duplicated:,}")
        table.add_row("chaos: events reordered", f"{c.reordered:,}")
        table.add_row("chaos: events delayed", f"{c.delayed:,}")
        for point, n in sorted(c.crashes.items()):
            table.add_row(f"chaos: crashes at {point}", f"{n:,}")
        table.add_row("chaos: PostgreSQL restarts", f"{c.restarts:,}")
    table.add_row("time", f"{s.seconds:.1f} s")
    table.add_row("output", str(s.out))
    Console().print(table)
