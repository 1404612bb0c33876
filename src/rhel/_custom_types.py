"""Names for the pytrees that flow through the engine (like diffrax's ``_custom_types.py``)."""

from __future__ import annotations

from jaxtyping import Array, Float, PyTree

#: An energy's parameters ``theta``: any pytree of arrays (the step size of an HRU is one of them).
Params = PyTree[Array]
#: A phase-space state ``(q, p)``: positions and momenta of the same shape.
State = tuple[Float[Array, " n"], Float[Array, " n"]]
