"""Ctrl-C (SIGINT) in a run, on one rank or many: stop every rank promptly, report once.

:class:`InterruptGuard` is installed by the command line (``fe2qc run``) on every rank, with
the run's communicator passed explicitly. What it does:

* The first SIGINT raises :class:`KeyboardInterrupt` in the main thread (as Python's default
  handler does), except inside :func:`deferred_interrupts` blocks (the checkpoint writes),
  where it is held back until the block ends. Later SIGINTs are ignored: the first one is
  already being acted on.
* The caller catches the interrupt (also one hidden inside a ``SystemError`` from numba, see
  :func:`fe2qc.errors.is_interrupt`) and calls :meth:`InterruptGuard.finish`: it prints one
  line (``<prog>: interrupted ...`` with what :attr:`InterruptGuard.describe` returns: the
  last converged step and where its checkpoint is) and ends the run with exit status
  :data:`EXIT_INTERRUPTED` (130). With more than one rank it calls ``comm.Abort(130)``:
  MPICH's ``mpirun`` ends every rank then and returns 130. A Python exit (``sys.exit``) is not
  enough there: a rank still blocked in a receive or a collective would wait forever, and
  ``mpirun`` keeps waiting for it.
* ``mpirun`` (MPICH hydra) forwards a terminal's Ctrl-C to every rank, so usually every rank
  is interrupted; the message comes from rank 0, the one that knows the checkpoint. Other
  ranks give rank 0 ``grace_other`` seconds to end the run before they end it themselves (a
  SIGINT sent to one rank only, e.g. ``kill -INT`` of a worker, still ends the run, with the
  message naming that rank).
* A rank blocked in an MPI call when the signal comes cannot run Python code until the call
  returns (the macro root waiting for an RVE worker, say). With more than one rank the guard
  therefore also watches for the signal from a helper thread (``signal.set_wakeup_fd``); if
  the main thread has not taken over within ``grace_root`` seconds (rank 0) or
  ``grace_other`` seconds (other ranks), the thread prints the message and aborts.

A rank killed outright (SIGKILL, a segmentation fault) ends the whole job by itself: hydra
kills the remaining ranks when one dies of a signal.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator

from fe2qc.errors import is_interrupt

__all__ = ["EXIT_INTERRUPTED", "InterruptGuard", "deferred_interrupts", "current_guard",
           "is_interrupt", "abort_all"]

#: exit status of an interrupted run (128 + SIGINT, what a shell reports for Ctrl-C)
EXIT_INTERRUPTED = 130

_current: InterruptGuard | None = None


def abort_all(comm, code: int) -> None:
    """End every rank of ``comm`` now with exit status ``code``; does not return.

    Flushes this rank's output and waits a moment first (MPICH's proxies drop output that has
    not been forwarded when the job is torn down), then ``comm.Abort(code)``. ``MPI_Abort`` can
    return before ``mpirun`` has killed this process; the process then waits to be killed and
    exits by itself with ``code`` if that does not happen within 10 s.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass
    time.sleep(0.25)
    try:
        comm.Abort(int(code))
    finally:
        time.sleep(10.0)
        os._exit(int(code))


def current_guard() -> InterruptGuard | None:
    """The installed guard of this process, if any."""
    return _current


class InterruptGuard:
    """SIGINT handling for one rank of ``comm`` (see the module docstring).

    Args:
        comm: the communicator of the run (``Abort`` is called on it); None for a serial
            run without MPI.
        prog: the name the message starts with.
        describe: a callable giving the text about the last checkpoint (may be set later,
            as :attr:`describe`); it is read from the watchdog thread, so it should only
            return a string prepared beforehand.
        grace_root, grace_other: seconds rank 0 / the other ranks wait for the main thread
            (and the other ranks for rank 0) before ending the run from the watchdog.
        stream: where the message goes (default ``sys.stderr``).
    """

    def __init__(self, comm=None, *, prog: str = "fe2qc", describe: Callable[[], str] | None
                 = None, grace_root: float = 1.0, grace_other: float = 5.0, stream=None):
        self.comm = comm
        self.rank = 0 if comm is None else int(comm.rank)
        self.size = 1 if comm is None else int(comm.size)
        self.prog = prog
        self.describe = describe or (lambda: "")
        self.grace_root = float(grace_root)
        self.grace_other = float(grace_other)
        self.stream = stream
        self.signalled_at: float | None = None
        self._deferred = 0
        self._pending = False
        self._lock = threading.Lock()
        self._finishing = False
        self._installed = False
        self._previous = None
        self._wakeup_previous = -1
        self._pipe: tuple[int, int] | None = None

    # -- installation ---------------------------------------------------------------------------
    def install(self) -> InterruptGuard:
        """Install the SIGINT handler (and, with several ranks, the watchdog). Main thread."""
        global _current
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("InterruptGuard.install() must run in the main thread")
        self._previous = signal.signal(signal.SIGINT, self._handler)
        self._installed = True
        _current = self
        if self.size > 1:
            self._start_watchdog()
        return self

    def attach(self, comm) -> None:
        """Set the communicator once MPI is up (main thread).

        Starts the watchdog with more than one rank. Lets the guard be installed before MPI is
        initialised.
        """
        self.comm = comm
        self.rank, self.size = int(comm.rank), int(comm.size)
        if self._installed and self.size > 1 and self._pipe is None:
            self._start_watchdog()

    def _start_watchdog(self) -> None:
        r, w = os.pipe()
        os.set_blocking(w, False)
        self._pipe = (r, w)
        self._wakeup_previous = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        threading.Thread(target=self._watch, name="fe2qc-interrupt-watchdog",
                         daemon=True).start()

    def uninstall(self) -> None:
        """Restore the previous SIGINT handler and wake-up fd; the watchdog thread ends."""
        global _current
        if not self._installed:
            return
        signal.signal(signal.SIGINT, self._previous)
        if self._pipe is not None:
            signal.set_wakeup_fd(self._wakeup_previous)
            os.close(self._pipe[1])  # the watchdog reads EOF and ends
            self._pipe = None
        self._installed = False
        if _current is self:
            _current = None

    # -- signal side ----------------------------------------------------------------------------
    def _handler(self, signum, frame) -> None:
        first = self.signalled_at is None
        if first:
            self.signalled_at = time.monotonic()
        if not first or self._finishing:
            return  # already being acted on
        if self._deferred:
            self._pending = True
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold a SIGINT back until the block ends (then raise KeyboardInterrupt)."""
        self._deferred += 1
        try:
            yield
        finally:
            self._deferred -= 1
            if not self._deferred and self._pending and not self._finishing:
                self._pending = False
                raise KeyboardInterrupt

    def _watch(self) -> None:
        r = self._pipe[0]
        while True:
            try:
                data = os.read(r, 64)
            except OSError:
                return
            if not data:  # uninstalled
                os.close(r)
                return
            if signal.SIGINT in data:
                break
        t0 = time.monotonic()
        grace = self.grace_root if self.rank == 0 else 0.0
        while True:
            time.sleep(0.05)
            if self._finishing:
                return  # the main thread took over
            waited = time.monotonic() - t0
            # a checkpoint being written gets a little longer (it is local and short)
            if waited > grace and (not self._deferred or waited > grace + 2.0):
                break
        self.finish(where="watchdog")

    # -- ending the run -------------------------------------------------------------------------
    def message(self) -> str:
        """The one line printed for an interrupt on this rank."""
        who = f" on rank {self.rank} of {self.size}" if self.size > 1 else ""
        text = f"{self.prog}: interrupted (SIGINT{who})"
        try:
            extra = self.describe()
        except Exception:  # noqa: BLE001 - the message must still come out
            extra = ""
        return f"{text}; {extra}" if extra else text

    def finish(self, *, where: str = "main") -> int:
        """Print the message once and end the run.

        With several ranks this calls ``comm.Abort(130)`` (does not return), else it returns 130
        for the caller to exit with.
        """
        with self._lock:
            if self._finishing:
                if threading.current_thread() is threading.main_thread() and self.size > 1:
                    threading.Event().wait()  # the watchdog is ending the run
                return EXIT_INTERRUPTED
            self._finishing = True
        if self.signalled_at is None:
            self.signalled_at = time.monotonic()
        if self.size > 1 and self.rank != 0:
            # rank 0 reports the checkpoint; give it the chance to end the run first
            time.sleep(max(0.0, self.signalled_at + self.grace_other - time.monotonic()))
        stream = self.stream or sys.stderr
        try:
            print(self.message(), file=stream, flush=True)
        except Exception:  # noqa: BLE001
            pass
        if self.size > 1:
            abort_all(self.comm, EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold SIGINT back for the duration of the block, then raise KeyboardInterrupt if one came.

    Used e.g. while a checkpoint is written and renamed.

    Uses the installed :class:`InterruptGuard`; without one (library use) it swaps in a
    recording handler when called from the main thread, and does nothing elsewhere.
    """
    guard = _current
    if guard is not None and guard._installed:
        with guard.deferred():
            yield
        return
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got = []
    previous = signal.signal(signal.SIGINT, lambda s, f: got.append(s))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if got:
            if callable(previous):
                previous(signal.SIGINT, None)
            elif previous == signal.SIG_DFL:
                raise KeyboardInterrupt
