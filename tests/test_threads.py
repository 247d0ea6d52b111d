"""fe2qc pins its thread pools to one thread per MPI rank itself (fe2qc.threads).

Each case runs in a fresh interpreter with a launcher's environment (``PMI_SIZE``, as MPICH's
``mpirun`` sets it; MPI itself is not started) and reads the thread counts back from the
libraries: numpy's BLAS through threadpoolctl, numba's own count.
"""

import json
import os
import subprocess
import sys

import pytest

CODE = """
import json, os
import numpy, numba
import fe2qc.threads as t
import threadpoolctl
done = t.pin_threads()
blas = [i["num_threads"] for i in threadpoolctl.threadpool_info()]
print(json.dumps({"done": done, "blas": blas, "numba": numba.get_num_threads(),
                  "omp": os.environ.get("OMP_NUM_THREADS")}))
"""


def _run(**env) -> dict:
    base = {k: v for k, v in os.environ.items()
            if k not in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "SLURM_STEP_NUM_TASKS",
                         "FE2QC_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                         "NUMBA_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", CODE], env=base | env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_one_thread_per_rank_under_a_launcher_and_fe2qc_threads_overrides():
    two = _run(PMI_SIZE="2")
    assert two["done"]["threads"] == 1 and two["omp"] == "1"
    assert two["blas"] and set(two["blas"]) == {1} and two["numba"] == 1
    hybrid = _run(PMI_SIZE="2", FE2QC_THREADS="2")
    assert hybrid["done"]["threads"] == 2 and set(hybrid["blas"]) == {2}
    assert hybrid["numba"] == min(2, os.cpu_count())
    # the user's own setting is kept; without a launcher nothing is touched
    mine = _run(SLURM_STEP_NUM_TASKS="4", OMP_NUM_THREADS="2")
    assert "OMP_NUM_THREADS" in mine["done"]["kept"] and mine["omp"] == "2"
    assert set(mine["blas"]) == {2}
    alone = _run()
    assert alone["done"]["threads"] is None and alone["omp"] is None


def test_a_bad_fe2qc_threads_is_refused():
    from fe2qc.threads import threads_per_rank

    os.environ["FE2QC_THREADS"] = "0"
    try:
        with pytest.raises(ValueError, match="FE2QC_THREADS must be a positive integer"):
            threads_per_rank()
    finally:
        del os.environ["FE2QC_THREADS"]
