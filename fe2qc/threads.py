"""Threads per MPI rank: one, unless the user says otherwise (fe2qc pins them itself).

An MPI job runs one process per core. Each of them would otherwise start as many OpenMP, BLAS
(OpenBLAS, MKL) and numba threads as the node has cores, so ``mpirun -n 64`` on a 64-core node
would run 64 × 64 threads and crawl. :func:`pin_threads` sets every thread count to one per
rank when the process was started by an MPI launcher with more than one rank
(:func:`launched_size`: ``mpirun``/``mpiexec`` of MPICH or Open MPI, or ``srun``), or to
``FE2QC_THREADS`` when that is set (a hybrid run: e.g. 4 ranks × 8 threads). It

* sets ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``,
  ``BLIS_NUM_THREADS``, ``VECLIB_MAXIMUM_THREADS``, ``NUMEXPR_NUM_THREADS`` and
  ``NUMBA_NUM_THREADS`` where the user has not set them (for libraries not loaded yet and for
  child processes), and
* limits the thread pools of libraries already loaded (numpy's BLAS, OpenMP runtimes) with
  ``threadpoolctl``, and numba's with ``numba.set_num_threads``.

A thread count the user set in the environment is kept (``OMP_NUM_THREADS=4 mpirun ...``
means what it says). :func:`fe2qc.mpi.bootstrap` calls :func:`pin_threads` before MPI starts,
so every fe2qc program and library user under ``mpirun`` gets it.
"""

from __future__ import annotations

import os
import sys

__all__ = ["THREAD_VARIABLES", "launched_size", "threads_per_rank", "pin_threads"]

#: the environment variables of the thread pools fe2qc may meet
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
                    "NUMBA_NUM_THREADS")

#: what the last :func:`pin_threads` did (for a debug log line)
last: dict | None = None


def launched_size() -> int:
    """The number of ranks an MPI launcher (or ``srun``) started; 1 without one.

    Read from the launcher's environment, without initialising MPI.
    """
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "SLURM_STEP_NUM_TASKS"):
        v = os.environ.get(var, "")
        if v.isdigit():
            return int(v)
    return 1


def threads_per_rank() -> int | None:
    """``FE2QC_THREADS`` if set, else 1 under a launcher with several ranks, else None.

    Raises:
        ValueError: ``FE2QC_THREADS`` is not a positive integer.
    """
    text = os.environ.get("FE2QC_THREADS", "").strip()
    if text:
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"FE2QC_THREADS must be a positive integer (threads per MPI "
                             f"rank), got {text!r}")
        return int(text)
    return 1 if launched_size() > 1 else None


def pin_threads(n: int | None = None) -> dict:
    """Limit every thread pool of this process to ``n`` threads (default :func:`threads_per_rank`).

    Returns:
        What was done: ``{"threads": n or None, "set": [variables set], "kept": [variables
        the user had set], "limited": [libraries limited at run time]}``.
    """
    global last
    n = threads_per_rank() if n is None else int(n)
    out: dict = {"threads": n, "set": [], "kept": [], "limited": []}
    if n is None:
        last = out
        return out
    for var in THREAD_VARIABLES:
        if var in os.environ:
            out["kept"].append(var)
        else:
            os.environ[var] = str(n)
            out["set"].append(var)
    user_threads = os.environ.get("OMP_NUM_THREADS") if "OMP_NUM_THREADS" in out["kept"] else None
    limit = n if user_threads is None or not user_threads.isdigit() else int(user_threads)
    numba = sys.modules.get("numba")
    if numba is not None and "NUMBA_NUM_THREADS" not in out["kept"]:
        try:
            numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))  # starts its OpenMP
            out["limited"].append("numba")
        except (ValueError, RuntimeError):  # pragma: no cover - numba's own limits
            pass
    try:  # after numba: its threading layer may have loaded an OpenMP runtime
        import threadpoolctl

        threadpoolctl.threadpool_limits(limits=limit)
        out["limited"] += sorted({i["internal_api"] for i in threadpoolctl.threadpool_info()})
    except ImportError:  # pragma: no cover - a dependency; the variables still apply
        pass
    last = out
    return out
