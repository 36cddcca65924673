"""Chaos for the local runner: at-least-once, out-of-order delivery and crashes at fault points.

S3 notifications arrive at least once and in any order (and now and then not at all: Lambda's
asynchronous queue can drop one, and Glue's job state changes are best effort), and Lambdas
die mid-way and are retried. ``Chaos`` makes all of that happen, reproducibly from a seed,
so a run can prove that the output does not change.
"""
from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field

from txnpipe.core.keys import ChunkRef

FAULT_POINTS = (
    "chunker.after_put",  # chunk written, pointer not yet committed
    "detector.in_ingest",  # inside the ingest transaction
    "detector.after_commit",  # chunk committed, detection file not yet written
    "detector.after_file",  # file written, not yet marked written
)


class InjectedCrash(RuntimeError):
    """A crash injected at a named fault point; the runner retries like Lambda would."""


@dataclass
class ChaosReport:
    duplicated: int = 0
    reordered: int = 0
    delayed: int = 0
    lost: int = 0  # events never delivered (chunk, manifest, batch-run completion)
    crashes: Counter[str] = field(default_factory=Counter)
    restarts: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts ``run.json`` records (crashes summed over the fault points)."""
        return {"duplicated": self.duplicated, "reordered": self.reordered,
                "delayed": self.delayed, "lost": self.lost,
                "crashes": sum(self.crashes.values()), "restarts": self.restarts}  # fmt: skip


class Chaos:
    def __init__(self, seed: int, crash_rate: float = 0.03, max_crashes: int = 40,
                 loss_rate: float = 0.05) -> None:  # fmt: skip
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._held: list[list[ChunkRef]] = []
        self.crash_rate = crash_rate
        self.max_crashes = max_crashes
        self.loss_rate = loss_rate
        self.lose_manifests = self._rng.random() < 0.5  # in some seeds the manifest's event
        self.report = ChaosReport()

    def fault(self, point: str) -> None:
        """Crash the first time a point is reached (so every point is exercised), then at random."""
        with self._lock:
            first = point not in self.report.crashes
            total = sum(self.report.crashes.values())
            if not first and (total >= self.max_crashes or self._rng.random() >= self.crash_rate):
                return
            self.report.crashes[point] += 1
        raise InjectedCrash(point)

    def deliveries(self, events: list[list[ChunkRef]], final: bool = False) -> list[list[ChunkRef]]:
        """The events to deliver now: some twice, some held back for later, some never (S3
        and Lambda's asynchronous queue may lose one), in shuffled order."""
        with self._lock:
            out: list[list[ChunkRef]] = []
            for event in events:
                roll = self._rng.random()
                if not self.report.duplicated:
                    roll = 0.0  # the first event is always duplicated, the next one delayed,
                elif not self.report.delayed and not final:
                    roll = 0.2
                elif not self.report.lost:
                    roll = 1.0  # and the one after lost
                if roll >= 1.0 - self.loss_rate or (self.lose_manifests and _manifest(event)):
                    self.report.lost += 1
                elif roll < 0.15:
                    out += [event, event]
                    self.report.duplicated += 1
                elif roll < 0.30 and not final:
                    self._held.append(event)
                    self.report.delayed += 1
                else:
                    out.append(event)
            if final or self._rng.random() < 0.5:
                out += self._held
                self._held = []
            before = list(out)
            self._rng.shuffle(out)
            self.report.reordered += sum(a is not b for a, b in zip(before, out))
            return out

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def lose_poll(self) -> bool:
        """Whether a batch run's completion notice is lost this time (Glue's job state
        changes are best effort); the detector's sweep must find the run anyway."""
        with self._lock:
            if self._rng.random() < 0.3:
                self.report.lost += 1
                return True
            return False


def _manifest(event: list[ChunkRef]) -> bool:
    return any(ref.chunk is None for ref in event)
