"""Shared fixtures: small simulated data made once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = ROOT.parent / "shared" / "data" / "real"
# Tests run from the repository root, as the configs' relative paths expect.
os.chdir(ROOT)


@pytest.fixture(scope="session")
def small_sample(tmp_path_factory) -> Path:
    """A small simulated Shape A data set (the default preset), written as CSV."""
    from retention_study.simulate import write_simulation

    out = tmp_path_factory.mktemp("sample")
    write_simulation(out, n_customers=1500, seed=7, preset="contact", fmt="csv")
    return out
