"""Progress on a terminal and log levels: what a long run tells its user, and how much.

:class:`ProgressBar` draws one line at the bottom of a terminal (stderr by default): a bar
of the load factor from 0 to the last target, the step, the Newton iteration and the RVE batch
of the current material evaluation (``RVEs 120/480``). It is drawn only when its stream is a
terminal (``isatty``), on one rank (the caller passes ``enabled=False`` elsewhere), and at most
ten times a second; log lines printed through :meth:`ProgressBar.write` clear it first and
redraw it after, so the two never mix. Without a terminal (a batch job, a pipe, ``--json``
into a file) nothing of it is printed.

:class:`Log` is the leveled log of ``fe2qc run`` (``--log-level``): ``error`` prints nothing
but errors (the CLI prints those), ``warning`` adds warnings (e.g. scale separation), ``info``
(the default) the progress lines of every step, ``debug`` the details (thread pinning,
dispatch per step, checkpoint writes). It prints on one rank only.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["LEVELS", "Log", "ProgressBar"]

#: the log levels, least to most verbose
LEVELS = ("error", "warning", "info", "debug")


class ProgressBar:
    """A one-line progress bar of a run's load factor and RVE batches (terminal only).

    Args:
        total: the load factor at the end of the run.
        stream: where to draw (default ``sys.stderr``).
        enabled: draw at all (e.g. ``comm.rank == 0``); None: when ``stream`` is a terminal.
        width: the bar's width in characters.
        interval: the shortest time between two redraws (seconds).
    """

    def __init__(self, total: float, *, stream: TextIO | None = None,
                 enabled: bool | None = None, width: int = 24, interval: float = 0.1):
        self.stream = sys.stderr if stream is None else stream
        tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = tty if enabled is None else bool(enabled) and tty
        self.total = float(total) if total else 1.0
        self.width = int(width)
        self.interval = float(interval)
        self.load = 0.0
        self.step = ""
        self.batch: tuple[int, int] | None = None
        self._last = 0.0
        self._shown = False

    def _line(self) -> str:
        frac = min(max(self.load / self.total, 0.0), 1.0)
        full = int(round(frac * self.width))
        text = (f"load {self.load:.4g}/{self.total:.4g} [{'#' * full}{'-' * (self.width - full)}]"
                f" {self.step}")
        if self.batch is not None:
            text += f"  RVEs {self.batch[0]}/{self.batch[1]}"
        return text

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        self.stream.write("\r\x1b[2K" + self._line())
        self.stream.flush()
        self._shown = True

    def update(self, load: float | None = None, step: str | None = None) -> None:
        """Set the load factor reached and a note on the step (e.g. ``step 2``); redraw."""
        if load is not None:
            self.load = float(load)
        if step is not None:
            self.step = step
            self.batch = None
        self._draw(force=True)

    def rves(self, done: int, total: int) -> None:
        """Set the progress of the current RVE batch (``done`` of ``total`` evaluated)."""
        self.batch = (int(done), int(total))
        self._draw(force=done >= total)

    def write(self, text: str, stream: TextIO | None = None) -> None:
        """Print a log line (to ``stream``, default the bar's) above the bar."""
        shown = self._shown
        if shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
        out = self.stream if stream is None else stream
        out.write(text + "\n")
        out.flush()
        if shown:
            self._draw(force=True)

    def close(self) -> None:
        """Remove the bar from the terminal."""
        if self._shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._shown = False
        self.enabled = False


class Log:
    """The leveled log of a run: :meth:`info`, :meth:`warning`, :meth:`debug` (one rank).

    Args:
        level: one of :data:`LEVELS`.
        stream: where progress and debug lines go (warnings go to stderr).
        enabled: this rank prints (e.g. ``comm.rank == 0``).
        bar: a :class:`ProgressBar` whose :meth:`~ProgressBar.write` prints the lines.

    Raises:
        ValueError: an unknown level.
    """

    def __init__(self, level: str = "info", *, stream: TextIO | None = None,
                 enabled: bool = True, bar: ProgressBar | None = None):
        if level not in LEVELS:
            raise ValueError(f"log level must be one of {', '.join(LEVELS)}, got {level!r}")
        self.level = LEVELS.index(level)
        self.stream = sys.stdout if stream is None else stream
        self.enabled = bool(enabled)
        self.bar = bar

    def _print(self, text: str, stream: TextIO | None = None) -> None:
        stream = self.stream if stream is None else stream
        if self.bar is not None:
            self.bar.write(text, stream)
        else:
            print(text, file=stream, flush=True)

    def at(self, level: str) -> bool:
        """Would a line of ``level`` be printed?"""
        return self.enabled and LEVELS.index(level) <= self.level

    def warning(self, text: str) -> None:
        """Print a warning on stderr (levels warning and up)."""
        if self.at("warning"):
            self._print(text, sys.stderr)

    def info(self, text: str) -> None:
        """Print a progress line (levels info and debug)."""
        if self.at("info"):
            self._print(text)

    def debug(self, text: str) -> None:
        """Print a detail (level debug)."""
        if self.at("debug"):
            self._print(text)

    __call__ = info
