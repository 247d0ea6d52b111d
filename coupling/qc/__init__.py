"""Quasicontinuum (QC) method: mesh, coupling and output layers."""
