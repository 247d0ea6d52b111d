"""FE² outputs and checks at the user boundary.

The VTX stress fields are in GPa (and say so), and the scale-separation warning (the
acoustic-tensor scan is in ``test_tensors.py``).
"""

import numpy as np
import pytest

import fe2qc.mpi

MPI = fe2qc.mpi.mpi()
fe2qc.mpi.dolfinx()

from dolfinx import mesh  # noqa: E402

from coupling.driver import scale_separation  # noqa: E402
from fe2.io import ResultWriter, von_mises_cauchy  # noqa: E402
from fe2.materials import NeoHookean  # noqa: E402
from fe2.solver import Dirichlet, Problem  # noqa: E402
from fe2qc.units import EV_PER_A3_IN_GPA as GPA  # noqa: E402


# -- VTX output in GPa ----------------------------------------------------------------------
def test_vtx_stresses_are_written_in_gpa_under_names_that_say_so(tmp_path):
    """A homogeneous deformation writes the material's P(F) in GPa to every cell.

    u = (F - I) X on the whole boundary, exact for P1: every cell's written stress is the
    material's P(F) in eV/Å³ times 160.2176... GPa, and the same numbers are in the .bp file
    under the names P_GPa and von_mises_GPa.
    """
    comm = MPI.COMM_WORLD
    mu, lmbda = 0.30, 0.75  # eV/Å³ (48 and 120 GPa)
    F = np.array([[1.02, 0.01], [-0.005, 0.97]])
    nh = NeoHookean(mu, lmbda, 2)
    msh = mesh.create_unit_square(comm, 3, 3)
    bc = Dirichlet(lambda x: np.ones(x.shape[1], dtype=bool),
                   lambda x: (F - np.eye(2)) @ x[:2])
    pb = Problem(msh, nh, bcs=[bc], rtol=1e-12, atol=1e-14, log=None)
    pb.solve([1.0])
    path = comm.bcast(str(tmp_path), root=0)
    with ResultWriter(pb, f"{path}/plate", cell_fields=("extra",)) as writer:
        n = pb.layout.num_owned_cells
        writer.set_cell_field("extra", np.arange(n, dtype=float))
        writer.write(1.0)
        P_ev, _ = nh.evaluate(F[None])
        owned = writer._cell_dofs
        P_file = writer.P.x.array.reshape(-1, 2, 2)[owned]
        assert np.allclose(P_file, GPA * P_ev[0], rtol=1e-10, atol=0)
        assert np.abs(P_file).max() > 1.0  # GPa-sized numbers, not eV/Å³
        vm = writer.von_mises.x.array[owned]
        assert np.allclose(vm, GPA * von_mises_cauchy(F[None], P_ev)[0], rtol=1e-10, atol=0)
        assert np.array_equal(writer.cell_fields["extra"].x.array[owned], np.arange(n))
        names = [f.name for f in (writer.P, writer.von_mises, writer.det_F)]
        written = (P_file[0].copy(), vm[0])
    comm.Barrier()
    assert names == ["P_GPa", "von_mises_GPa", "det_F"]
    if comm.rank == 0:
        cells = tmp_path / "plate_cells.bp"
        assert sorted(p.name for p in tmp_path.glob("*.bp")) == ["plate_cells.bp",
                                                                 "plate_displacement.bp"]
        meta = (cells / "md.0").read_bytes()
        for name in ("P_GPa", "von_mises_GPa", "det_F", "extra"):
            assert f'Name="{name}"'.encode() in meta
        data = (cells / "data.0").read_bytes()  # BP4 keeps the float64 values as they are
        assert written[0].astype("<f8").tobytes() in data
        assert np.float64(written[1]).astype("<f8").tobytes() in data
        # and not the eV/Å³ numbers
        assert P_ev[0].astype("<f8").tobytes() not in data


def _cu_plate(outdir: str, *, tip_size: float, far_size: float, K: float) -> dict:
    """The cracked plate (1000 Å square) of 2×2×2 Cu_u3 RVEs, P1, one step to ``K``."""
    return {"mesh": {"generator": "cracked_plate", "crack_length": 200.0, "width": 1000.0,
                     "height": 1000.0, "tip_size": tip_size, "far_size": far_size,
                     "grading": 0.6},
            "material": {"type": "rve", "potential": "Cu_u3.eam", "lattice": "fcc",
                         "size": [2, 2, 2]},
            "loading": {"mode": "K", "value": K, "steps": [1.0]},
            "solver": {"degree": 1},
            "output": {"directory": outdir, "vtx": False, "checkpoint": False}}


# -- scale separation --------------------------------------------------------------------------
def test_scale_separation_flags_elements_smaller_than_the_rve():
    assert scale_separation([3.0, 7.2, 7.3, 100.0], 7.23).tolist() == [True, True, False, False]


def test_simulation_warns_once_and_counts_gauss_points_in_elements_below_the_rve_edge(
        tmp_path, capfd):
    """The crack mesh with 4 Å elements at the tip and 7.23 Å RVEs.

    The count equals the number of Gauss points in cells whose diameter (DOLFINx's own ``h``)
    is below the RVE edge.
    """
    import dolfinx.cpp.mesh

    from coupling.config import parse_config
    from coupling.driver import Simulation

    comm = MPI.COMM_WORLD
    data = _cu_plate(comm.bcast(str(tmp_path / "out"), root=0), tip_size=4.0, far_size=500.0,
                     K=0.3)
    sim = Simulation(parse_config(data), comm, log=None)
    try:
        out = sim._scale_separation()
        msh = sim.mesh
        n = sim.problem.layout.num_owned_cells
        h = dolfinx.cpp.mesh.h(msh._cpp_object, 2, np.arange(n, dtype=np.int32))
        expected = comm.allreduce(int((h < out["rve_edge_A"]).sum())
                                  * sim.problem.layout.points_per_cell)
    finally:
        sim._close()
    assert out["rve_edge_A"] == pytest.approx(2 * 3.615, rel=1e-6)
    assert out["points_in_elements_below_rve_edge"] == expected > 0
    assert out["min_element_size_A"] < 7.0
    err = capfd.readouterr().err
    if comm.rank == 0:
        assert err.count("warning: scale separation") == 1
        assert f"{expected} of {out['gauss_points']} Gauss points" in err
    else:
        assert "scale separation" not in err


# -- Hill-Mandel at zero load --------------------------------------------------------------
def test_zero_load_run_reports_small_hill_mandel_mismatches(tmp_path):
    """K = 0: every RVE sits at F = I with P ~ 1e-16 eV/Å³.

    The step's Hill-Mandel mismatches are measured against max(|P|, 1e-3 |A|), not against P
    (which gave 1.5e6).
    """
    import json

    from coupling.config import parse_config
    from coupling.driver import Simulation

    comm = MPI.COMM_WORLD
    out = comm.bcast(str(tmp_path / "zero"), root=0)
    data = _cu_plate(out, tip_size=60.0, far_size=600.0, K=0.0)
    summary = Simulation(parse_config(data), comm, log=None).run()
    assert summary["load_factor"] == 1.0
    if comm.rank == 0:
        (step,) = [json.loads(line) for line in open(f"{out}/steps.jsonl")]
        hm = step["hill_mandel"]
        assert hm["P_max_GPa"] < 1e-10
        # 1e-3 |A| with the plane-strain tangent of Cu_u3 at F = I:
        # |A|^2 = 2 C11^2 + 2 C12^2 + 4 C44^2 (C11, C12, C44 = 167.265, 124.153, 76.447 GPa)
        c11, c12, c44 = 167.265, 124.153, 76.447
        floor = 1e-3 * np.sqrt(2 * c11**2 + 2 * c12**2 + 4 * c44**2)
        assert hm["stress_floor_GPa"] == pytest.approx(floor, rel=1e-5)
        assert hm["power_mismatch"] < 1e-7 and hm["stress_mismatch"] < 2e-7


def test_per_cell_rve_fields_count_relaxation_iterations_and_seconds(tmp_path):
    """With vacancy RVEs the relaxation does work.

    Every cell's ``rve_relaxation_iterations`` is the sum over its Gauss points of the RVE
    Newton iterations of the step's material evaluations (> 0), and ``rve_seconds`` their
    compute time. (With the demo's perfect lattice the iterations are 0: such a cell is at
    equilibrium under any homogeneous F.)
    """
    from coupling.config import parse_config
    from coupling.driver import CELL_FIELDS, Simulation

    comm = MPI.COMM_WORLD
    data = {"mesh": {"generator": "cracked_plate", "crack_length": 200.0, "width": 1000.0,
                     "height": 1000.0, "tip_size": 100.0, "far_size": 800.0, "grading": 0.8},
            "material": {"type": "rve", "potential": "Cu_u3.eam", "lattice": "fcc",
                         "size": [2, 2, 2], "vacancy": True},
            "loading": {"mode": "K", "value": 0.3, "steps": [1.0]},
            "solver": {"degree": 1},
            "output": {"directory": comm.bcast(str(tmp_path / "vac"), root=0), "vtx": True,
                       "checkpoint": False}}
    sim = Simulation(parse_config(data), comm, log=None)
    sim.run()
    w = sim.writer
    assert tuple(w.cell_fields) == CELL_FIELDS
    owned = w._cell_dofs
    its = w.cell_fields["rve_relaxation_iterations"].x.array[owned]
    sec = w.cell_fields["rve_seconds"].x.array[owned]
    npc = sim.problem.layout.points_per_cell
    assert np.array_equal(its, sim.material.step_work_q.reshape(-1, npc).sum(axis=1))
    assert (its >= 1).all() and (its == np.round(its)).all()
    assert (sec > 0).all()
    assert (w.cell_fields["ellipticity_loss"].x.array[owned] == 0).all()
