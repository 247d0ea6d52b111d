"""Linear-elastic fracture mechanics (LEFM): mode-I crack-tip fields, E' and Griffith's K.

Numpy only, so that both sides can use it: ``atomistic.fracture`` (Griffith quantities from a
potential), ``coupling.qc.crack`` (the K-field boundary conditions of QC) and any continuum
solver.

Geometry (both fields): the crack lies along the negative x axis with its tip at ``tip``
(default the origin), the crack plane is y = 0 and z is the crack front. Plane strain.
Polar angle ``θ = atan2(y - y_tip, x - x_tip)`` in (-π, π]: the upper crack face is θ = π,
the lower one θ = -π; the fields are continuous everywhere else.

* :func:`isotropic_K_field` - the Williams/Irwin field with Lamé constants λ, μ
  (κ = (λ + 3μ)/(λ + μ) = 3 - 4ν in plane strain; with *2D* Lamé constants it is the exact
  field of a genuinely 2D isotropic material).
* :class:`AnisotropicCrack` - the rectilinearly anisotropic field of Sih, Paris & Irwin,
  Int. J. Fract. Mech. 1, 189 (1965) (Lekhnitskii/Stroh formalism), from the full stiffness
  C_ijkl expressed in the crack frame (x propagation, y crack-plane normal, z front).
* :func:`crack_frame_rotation` - the crack frame's rotation from Miller directions.
* :func:`griffith_K` - K_G = sqrt(2 γ E') from a surface energy γ and the plane-strain
  modulus E' for which G = K²/E'.

Units follow the rest of fe2qc: K in eV/Å^{5/2} when stiffnesses are eV/Å³ and lengths Å
(1 eV/Å^{5/2} = 1.602176634 MPa·m^{1/2}); any consistent set works.
"""

from __future__ import annotations

import numpy as np

from fe2qc.errors import InputError
from fe2qc.tensors import VOIGT_PAIRS, rotate4, sym, to_voigt_stiffness

__all__ = [
    "isotropic_K_field",
    "isotropic_plane_strain_modulus",
    "AnisotropicCrack",
    "cubic_stiffness",
    "cubic_crack_frame_stiffness",
    "crack_frame_rotation",
    "griffith_K",
]

def _polar(X_n2, tip) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X_n2, dtype=float)
    if X.ndim < 1 or X.shape[-1] < 2:
        raise InputError(f"points must be an (n, 2) array of x, y coordinates, got shape "
                         f"{X.shape}")
    t = np.asarray(tip, dtype=float)
    if t.shape != (2,):
        raise InputError(f"tip must be two coordinates (x, y), got {tip!r}")
    dx = X[..., 0] - t[0]
    dy = X[..., 1] - t[1]
    return np.hypot(dx, dy), np.arctan2(dy, dx)


def _check_lame(lam: float, mu: float) -> tuple[float, float]:
    lam, mu = float(lam), float(mu)
    if not (np.isfinite(lam) and np.isfinite(mu) and mu > 0 and lam + mu > 0):
        raise InputError(f"Lamé constants must satisfy mu > 0 and lam + mu > 0 (stable in "
                         f"plane strain), got lam={lam}, mu={mu}")
    return lam, mu


def isotropic_K_field(K: float, X_n2, *, lam: float, mu: float, tip=(0.0, 0.0)) -> np.ndarray:
    """Mode-I displacements of an isotropic plane-strain crack (Williams/Irwin).

    ``u = K/(2μ) sqrt(r/2π) [cos(θ/2)(κ - 1 + 2 sin²(θ/2)), sin(θ/2)(κ + 1 - 2 cos²(θ/2))]``
    with ``κ = (λ + 3μ)/(λ + μ)``.

    Args:
        K: mode-I stress intensity factor (stress × sqrt(length)).
        X_n2: points, shape (n, 2) (or (..., 2); extra trailing columns such as z are ignored).
        lam: Lamé's first constant λ (3D for plane strain, or 2D for a 2D material).
        mu: shear modulus μ (3D for plane strain, or 2D for a 2D material).
        tip: crack-tip position (x, y).

    Returns:
        Displacements, shape (n, 2).
    """
    lam, mu = _check_lame(lam, mu)
    r, th = _polar(X_n2, tip)
    kappa = (lam + 3 * mu) / (lam + mu)
    pre = float(K) / (2 * mu) * np.sqrt(r / (2 * np.pi))
    c, s = np.cos(th / 2), np.sin(th / 2)
    return np.stack([pre * c * (kappa - 1 + 2 * s * s), pre * s * (kappa + 1 - 2 * c * c)], -1)


def isotropic_plane_strain_modulus(lam: float, mu: float) -> float:
    """``E' = 4μ(λ + μ)/(λ + 2μ)`` (= E/(1 - ν²)), so that ``G = K²/E'``."""
    lam, mu = _check_lame(lam, mu)
    return 4 * mu * (lam + mu) / (lam + 2 * mu)


def griffith_K(gamma: float, E_prime: float) -> float:
    """Griffith stress intensity ``K_G = sqrt(2 γ E')``: G = K²/E' equals 2γ.

    Args:
        gamma: surface energy (energy / area), e.g. eV/Å².
        E_prime: plane-strain modulus with G = K²/E' (e.g. eV/Å³; see
            :func:`isotropic_plane_strain_modulus`, :attr:`AnisotropicCrack.plane_strain_modulus`).

    Returns:
        K_G, e.g. in eV/Å^{5/2}.
    """
    gamma, E_prime = float(gamma), float(E_prime)
    if not (np.isfinite(gamma) and gamma > 0 and np.isfinite(E_prime) and E_prime > 0):
        raise InputError(f"griffith_K needs gamma > 0 and E_prime > 0, got gamma={gamma}, "
                         f"E_prime={E_prime}")
    return float(np.sqrt(2 * gamma * E_prime))


# -- anisotropic stiffness helpers ------------------------------------------------------------
def cubic_stiffness(C11: float, C12: float, C44: float) -> np.ndarray:
    """The 3×3×3×3 stiffness of a cubic crystal in its cube frame."""
    C = np.zeros((3, 3, 3, 3))
    for i in range(3):
        for j in range(3):
            C[i, i, j, j] = C12
        C[i, i, i, i] = C11
    for i in range(3):
        for j in range(3):
            if i != j:
                C[i, j, i, j] = C[i, j, j, i] = C44
    return C


def cubic_crack_frame_stiffness(C11: float, C12: float, C44: float, orientation) -> np.ndarray:
    """Cubic stiffness rotated into the crack frame given by Miller directions.

    Args:
        C11: cubic constant C11 in the cube frame.
        C12: cubic constant C12 in the cube frame.
        C44: cubic constant C44 in the cube frame.
        orientation: three mutually orthogonal Miller directions as rows: x (propagation),
            y (crack-plane normal), z (front), e.g. ``[[1, 0, 0], [0, 1, 0], [0, 0, 1]]`` or
            ``[[1, -1, 0], [1, 1, 0], [0, 0, 1]]``. Right-handed.
    """
    return rotate4(cubic_stiffness(C11, C12, C44), crack_frame_rotation(orientation))


def crack_frame_rotation(orientation) -> np.ndarray:
    """Rotation R (rows: unit x, y, z of the crack frame in the cube frame) from Miller rows.

    Args:
        orientation: three mutually orthogonal, right-handed Miller directions as rows:
            x (propagation), y (crack-plane normal), z (front).

    Raises:
        InputError: rows that are zero, not mutually orthogonal or left-handed.
    """
    O = np.asarray(orientation, dtype=float)
    if O.shape != (3, 3) or np.any(np.linalg.norm(O, axis=1) == 0):
        raise InputError(f"orientation must be three non-zero Miller directions as rows, got "
                         f"{orientation!r}")
    R = O / np.linalg.norm(O, axis=1)[:, None]
    if np.abs(R @ R.T - np.eye(3)).max() > 1e-10:
        raise InputError(f"orientation rows must be mutually orthogonal, got {O.tolist()}")
    if np.linalg.det(R) < 0:
        raise InputError(f"orientation {O.tolist()} is left-handed: flip the sign of one row")
    return R


class AnisotropicCrack:
    """Mode-I crack in a rectilinearly anisotropic solid, plane strain (Sih-Paris-Irwin).

    The stiffness is expressed in the crack frame (x propagation, y crack-plane normal,
    z front). The in-plane problem must decouple from anti-plane shear, i.e. the x-y plane is
    a mirror plane of the material (``C_xxyz = C_xxxz = C_yyyz = C_xyyz = ... = 0``); this
    holds for every crack frame of a cubic crystal whose front is a <100> or <110> direction.

    Compliance. ``s`` is the 6×6 Voigt compliance for *engineering* shear strains,
    ``ε_V = s σ_V`` with ``ε_V = (ε_xx, ε_yy, ε_zz, 2ε_yz, 2ε_xz, 2ε_xy)``, i.e. the inverse of
    the Voigt stiffness ``C_IJ = C_ijkl``. In terms of the compliance tensor ``S_ijkl`` this is
    ``s_IJ = S_ijkl`` for I, J ≤ 3, ``2 S_ijkl`` when one index is a shear and ``4 S_ijkl``
    when both are (see :meth:`compliance_tensor`).

    Attributes:
        C: the stiffness (3×3×3×3), crack frame.
        s: 6×6 Voigt compliance (engineering shear).
        b: 6×6 plane-strain reduced compliance ``b_ij = s_ij - s_i3 s_j3 / s_33``
            (Voigt indices 0..5 = xx yy zz yz xz xy; only 0, 1, 5 are used).
        mu: the two roots μ1, μ2 (Im > 0) of
            ``b11 μ⁴ - 2 b16 μ³ + (2 b12 + b66) μ² - 2 b26 μ + b22 = 0``.
        p, q: ``p_k = b11 μ_k² + b12 - b16 μ_k``, ``q_k = b12 μ_k + b22/μ_k - b26``.
    """

    #: relative separation of μ1, μ2 below which the isotropic-limit formula is used
    degenerate_tol = 1e-6

    def __init__(self, C_ijkl) -> None:
        C = np.asarray(C_ijkl, dtype=float)
        if C.shape == (6, 6):
            raise InputError("AnisotropicCrack takes the full 3x3x3x3 stiffness tensor; convert "
                             "a Voigt matrix with fe2qc.tensors.from_voigt_stiffness first")
        if C.shape != (3, 3, 3, 3) or not np.isfinite(C).all():
            raise InputError(f"stiffness must be a finite 3x3x3x3 array, got shape {C.shape}")
        scale = np.abs(C).max()
        asym = max(np.abs(C - C.transpose(1, 0, 2, 3)).max(),
                   np.abs(C - C.transpose(0, 1, 3, 2)).max(),
                   np.abs(C - C.transpose(2, 3, 0, 1)).max())
        if scale == 0 or asym > 1e-8 * scale:
            raise InputError("stiffness must be non-zero with minor and major symmetries")
        Cv = to_voigt_stiffness(C)
        # in-plane (xx, yy, zz, xy) vs anti-plane (yz, xz) coupling
        coupling = np.abs(Cv[np.ix_([0, 1, 2, 5], [3, 4])]).max()
        if coupling > 1e-10 * scale:
            raise InputError(
                "the crack frame is not a mirror plane of the material (in-plane strains "
                "couple to anti-plane shear: C_ij,yz or C_ij,xz != 0); choose a crack front "
                "along a symmetry direction, e.g. <100> or <110> for cubic crystals")
        d = np.sqrt([1.0, 1, 1, 2, 2, 2])  # Mandel weights: eigenvalues of the tensor
        evals = np.linalg.eigvalsh(d[:, None] * sym(Cv) * d[None, :])
        if evals.min() <= 0:
            raise InputError("stiffness is not positive definite (unstable material)")
        self.C = C
        self.s = np.linalg.inv(Cv)
        s = self.s
        self.b = s - np.outer(s[:, 2], s[2, :]) / s[2, 2]
        b11, b12, b16 = self.b[0, 0], self.b[0, 1], self.b[0, 5]
        b22, b26, b66 = self.b[1, 1], self.b[1, 5], self.b[5, 5]
        roots = np.roots([b11, -2 * b16, 2 * b12 + b66, -2 * b26, b22])
        up = roots[roots.imag > 0]
        if len(up) != 2:  # pragma: no cover - positive definiteness forbids real roots
            raise InputError(f"characteristic equation has real roots {roots}")
        up = up[np.argsort(up.real + 1e-3 * up.imag)]
        self.mu = up
        self.degenerate = abs(up[0] - up[1]) < self.degenerate_tol * abs(up[0])
        if self.degenerate:  # (near) isotropy: a double root, use the mean
            m = up.mean()
            self.mu = np.array([m, m])
        self.p = b11 * self.mu**2 + b12 - b16 * self.mu
        self.q = b12 * self.mu + b22 / self.mu - b26

    def compliance_tensor(self) -> np.ndarray:
        """The compliance tensor ``S_ijkl`` (ε_ij = S_ijkl σ_kl) rebuilt from :attr:`s`."""
        S = np.zeros((3, 3, 3, 3))
        f = np.array([1.0, 1, 1, 2, 2, 2])
        for I, (i, j) in enumerate(VOIGT_PAIRS):
            for J, (k, l) in enumerate(VOIGT_PAIRS):
                v = self.s[I, J] / (f[I] * f[J])
                for a, b_ in {(i, j), (j, i)}:
                    for c, d in {(k, l), (l, k)}:
                        S[a, b_, c, d] = v
        return S

    @property
    def plane_strain_modulus(self) -> float:
        """E' with G = K²/E': ``E' = -2 / (b22 Im[(μ1 + μ2)/(μ1 μ2)])``."""
        m1, m2 = self.mu
        return float(-2.0 / (self.b[1, 1] * ((m1 + m2) / (m1 * m2)).imag))

    def energy_release_rate(self, K: float) -> float:
        """``G = -(K²/2) b22 Im[(μ1 + μ2)/(μ1 μ2)] = K²/E'``."""
        return float(K) ** 2 / self.plane_strain_modulus

    def displacements(self, K: float, X_n2, tip=(0.0, 0.0)) -> np.ndarray:
        """Mode-I displacements ``u = K sqrt(2r/π) Re[...]`` at the points (n, 2) -> (n, 2).

        ``u_x = K sqrt(2r/π) Re[(μ1 p2 z2 - μ2 p1 z1)/(μ1 - μ2)]``, ``u_y`` the same with q,
        ``z_k = sqrt(cos θ + μ_k sin θ)`` on the principal branch: since Im μ_k > 0 the
        radicand lies in the upper half plane for θ in (0, π) and in the lower one for
        θ in (-π, 0), so it meets the branch cut (the negative real axis) only at θ = ±π,
        the crack faces. Near isotropy (μ1 ≈ μ2) the analytic limit
        ``Re[p z - μ (p' z + p z')]`` is used instead of the 0/0 quotient.
        """
        r, th = _polar(X_n2, tip)
        c, s = np.cos(th), np.sin(th)
        pre = float(K) * np.sqrt(2 * r / np.pi)
        if self.degenerate:
            m = self.mu[0]
            b11, b12, b16 = self.b[0, 0], self.b[0, 1], self.b[0, 5]
            b22 = self.b[1, 1]
            z = np.sqrt(c + m * s + 0j)
            dz = s / (2 * z)
            p, q = self.p[0], self.q[0]
            dp, dq = 2 * b11 * m - b16, b12 - b22 / m**2
            ux = (p * z - m * (dp * z + p * dz)).real
            uy = (q * z - m * (dq * z + q * dz)).real
        else:
            m1, m2 = self.mu
            p1, p2 = self.p
            q1, q2 = self.q
            z1 = np.sqrt(c + m1 * s + 0j)
            z2 = np.sqrt(c + m2 * s + 0j)
            ux = ((m1 * p2 * z2 - m2 * p1 * z1) / (m1 - m2)).real
            uy = ((m1 * q2 * z2 - m2 * q1 * z1) / (m1 - m2)).real
        return np.stack([pre * ux, pre * uy], -1)
