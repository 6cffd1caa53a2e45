"""The probing progress bar shared by ``report`` and the rescue session: rich, on stderr, fed by the
investigation's progress events (which arrive from worker threads, hence the lock)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from kms_rescue.aws.results import ProgressEvent


class ProbeProgress:
    def __init__(self, console: Console | None = None) -> None:
        # Deferred for start-up time: lint and explain never import rich.
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]probing[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
            TimeElapsedColumn(), console=console or Console(stderr=True), transient=True,
        )
        self._task: Any = None
        self._lock = threading.Lock()

    def __enter__(self) -> ProbeProgress:
        self._progress.start()
        self._task = self._progress.add_task("", total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            if event.kind == "plan":
                self._progress.update(self._task, total=event.total, description=event.message or "")
            elif event.kind == "step":
                self._progress.advance(self._task)
                label = f"{event.identity}: {event.outcome}" if event.identity else (event.message or "")
                self._progress.update(self._task, description=label)
            elif event.kind == "call" and event.identity:
                self._progress.update(self._task, description=f"{event.identity} {event.operation}")
