"""The fe2qc test suite (pytest)."""
