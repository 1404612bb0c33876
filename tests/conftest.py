"""Test configuration.

float64 is enabled for the whole suite: the exactness claims (RHEL == BPTT for linear HRUs, convergence orders of the
estimators) are asserted at tolerances far below float32's resolution. Tests that measure float32 behaviour ask for it
explicitly with ``dtype=jnp.float32``.
"""

import os
from pathlib import Path

import jax
import pytest

jax.config.update("jax_enable_x64", True)

SHARED_DATA = Path(os.environ.get("RHEL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The workplace's real datasets (../shared/data beside the checkout); tests using it skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA}")
    return SHARED_DATA
