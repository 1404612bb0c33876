"""Energies of Hamiltonian systems, the contract RHEL needs of them, and its check.

One type, :class:`Energy`, describes the dynamics of every Hamiltonian recurrent unit and every continuous-time
physical system in the library. An energy is either

* *separable*, ``H = kinetic(p, theta) + potential(q, theta, f)``, integrated by the leapfrog
  (:func:`rhel.integrators.leapfrog_step`), or
* *non-separable*, one function ``hamiltonian(q, p, theta, f)``, integrated by the implicit midpoint rule
  (:class:`rhel.integrators.ImplicitMidpoint`; continuous-time physics only),

where ``q`` are the positions, ``p`` the momenta, ``theta`` the parameters (a pytree of arrays) and ``f`` the drive
of the current step (an HRU's input after its linear map, or a physical system's external force ``u(t)``).

**The contract** (paper Def. A.1), what makes RHEL's momentum-flipped echo retrace the forward run and carry the
gradient: the energy is *time-reversal invariant*, ``H(q, p) = H(q, -p)``, and smooth.
:func:`check_time_reversal` tests it on random states and raises :class:`ContractError` naming the property.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from rhel._custom_types import Params
from rhel.integrators import leapfrog_step

Kinetic = Callable[[Array, Params], Array]
Potential = Callable[[Array, Params, Array], Array]
Hamiltonian = Callable[[Array, Array, Params, Array], Array]


class ContractError(ValueError):
    """An energy breaks the contract RHEL needs (separable where required, time-reversal invariant, finite)."""


class ContractWarning(UserWarning):
    """RHEL's echo found the contract broken at run time (``RHEL(check="warn")``): the gradient is wrong."""


@dataclasses.dataclass(frozen=True)
class Energy:
    """The static description of a Hamiltonian (hashable: functions compare by identity).

    **Arguments:**

    - ``kinetic``: ``T(p, theta) -> scalar``, even in ``p`` (separable energies).
    - ``potential``: ``V(q, theta, f) -> scalar`` (separable energies).
    - ``hamiltonian``: ``H(q, p, theta, f) -> scalar`` for a non-separable energy (then no ``kinetic``/``potential``).
    - ``linear_coefficients``: optional ``theta -> (m, force)`` for energies whose unit-step leapfrog map is linear,
      enabling the parallel scan of :func:`rhel.integrators.linear_leapfrog_parallel`.

    An HRU folds its step size into the energy (it integrates ``step * H`` with unit step); a physical system keeps
    its energy in physical units and its integrator takes the time step ``dt``.
    """

    kinetic: Kinetic | None = None
    potential: Potential | None = None
    hamiltonian: Hamiltonian | None = None
    linear_coefficients: Callable[[Params], tuple[Array, Array]] | None = None

    def __post_init__(self):
        separable = self.kinetic is not None and self.potential is not None
        if separable == (self.hamiltonian is not None) or (self.kinetic is None) != (self.potential is None):
            raise ContractError(
                "an Energy needs either kinetic(p, theta) and potential(q, theta, f) (separable), or "
                "hamiltonian(q, p, theta, f) (non-separable), not both and not neither"
            )

    @property
    def separable(self) -> bool:
        """Whether the energy is ``T(p) + V(q, f)`` (integrable by the explicit leapfrog)."""
        return self.hamiltonian is None

    def require_separable(self, who: str, hint: str) -> None:
        """Raise :class:`ContractError` saying that ``who`` needs a separable energy, and what to do instead."""
        if not self.separable:
            raise ContractError(f"{who} needs a separable energy H = T(p) + V(q); {hint}")

    def __call__(self, q: Array, p: Array, theta: Params, f: Array) -> Array:
        """``H(q, p; theta, f)`` whichever way the energy was given."""
        if self.hamiltonian is not None:
            return self.hamiltonian(q, p, theta, f)
        return self.kinetic(p, theta) + self.potential(q, theta, f)


_SIGNATURES = {"kinetic": "kinetic(p, theta)", "potential": "potential(q, theta, f)",
               "hamiltonian": "hamiltonian(q, p, theta, f)"}  # fmt: skip


def check_energy_signature(
    energy: Energy,
    theta: Params,
    drive: Array,
    state_size: int,
    *,
    label: str,
    signatures: dict[str, str] | None = None,
) -> None:
    """Trace each function of ``energy`` once (``jax.eval_shape``, nothing is computed) on a state of ``state_size``
    positions and the drive of one step; raise :class:`ContractError` naming the function if it fails or does not
    return a scalar.

    **Arguments:**

    - ``energy``, ``theta``, ``drive``, ``state_size``: the energy, its parameters, one step's drive, the positions.
    - ``label``: how messages name the model; ``signatures``: how they write each function (default ``_SIGNATURES``).
    """
    signatures = {**_SIGNATURES, **(signatures or {})}
    leaves = jax.tree_util.tree_leaves(theta)
    dtype = jnp.result_type(*leaves) if leaves else jnp.result_type(float)
    x = jax.ShapeDtypeStruct((state_size,), dtype)
    if energy.separable:
        terms = {
            "kinetic": lambda p: energy.kinetic(p, theta),
            "potential": lambda q: energy.potential(q, theta, drive),
        }
    else:
        terms = {"hamiltonian": lambda q: energy.hamiltonian(q, q, theta, drive)}
    for name, fn in terms.items():
        sig = signatures[name]
        try:
            out = jax.eval_shape(fn, x)
        except Exception as err:  # noqa: BLE001 - any failure of the user's function is reported the same way
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise ContractError(
                f"{label}: the energy function {sig} failed on a state of shape ({state_size},): "
                f"{type(err).__name__}: {first[:200]}; check its arguments"
            ) from err
        if getattr(out, "shape", None) != ():
            raise ContractError(
                f"{label}: the energy function {sig} must return a scalar, got shape {getattr(out, 'shape', out)}; "
                "sum over the coordinates (e.g. jnp.sum(...))"
            )


def check_time_reversal(
    model: Any,
    theta: Params | None = None,
    drive: Array | None = None,
    *,
    key: PRNGKeyArray,
    steps: int = 8,
    scale: float = 1.0,
    dt: float = 1.0,
    rtol: float | None = None,
    state_size: int | None = None,
    name: str | None = None,
) -> float:
    """Check that an energy is time-reversal invariant; return the round-trip error (0 for a non-separable energy).

    On random states (standard normal times ``scale``): (1) ``H(q, p) == H(q, -p)`` and finite; (2) for a separable
    energy and ``steps > 0``, ``steps`` leapfrog steps of ``dt`` forward, a momentum flip, the same drives replayed in
    reverse and a final flip return to the start. Raises :class:`ContractError` naming the violated property otherwise.

    **Arguments:**

    - ``model``: a Hamiltonian recurrent unit (its energy, parameters and a random input sequence are used), or an
      :class:`Energy` (then pass ``theta`` and ``drive``).
    - ``theta``: the energy's parameters (with an :class:`Energy`).
    - ``drive``: the drive of every step (with an :class:`Energy`): one sample, used at every step.
    - ``key``: the PRNG key of the random states (and inputs).
    - ``steps``, ``scale``, ``dt``: length (0: no round trip), size and time step of the round trip.
    - ``rtol``: tolerance relative to the state's (and the energy's) size; default ``1e3 *`` the machine epsilon of the
      parameters' dtype.
    - ``state_size``: the number of positions (with an :class:`Energy`).
    - ``name``: how messages name the model (default: its class name).
    """
    kq, kp, ku = jax.random.split(key, 3)
    if isinstance(model, Energy):
        if theta is None or drive is None or state_size is None:
            raise TypeError("check_time_reversal of an Energy needs theta=, drive= and state_size=")
        energy, label, n = model, name or "energy", state_size
        leaves = jax.tree_util.tree_leaves(theta)
        dtype = jnp.result_type(*leaves) if leaves else jnp.result_type(float)
        f = jnp.asarray(drive, dtype)
        fs = jnp.broadcast_to(f, (steps, *f.shape))
    else:  # a unit: energy, parameters, state size and a random input sequence from it
        energy, theta, label = model.energy, model.energy_params(), name or type(model).__name__
        leaves = jax.tree_util.tree_leaves(theta)
        dtype = leaves[0].dtype if leaves else jnp.float32
        n = model.state_size
        us = scale * jax.random.normal(ku, (max(steps, 1), model.in_size), dtype)
        b = model.drive_matrix()
        fs = us if b is None else us @ b.T.astype(dtype)
        f, fs = fs[0], fs[:steps]
    rtol = 1e3 * float(jnp.finfo(dtype).eps) if rtol is None else rtol
    check_energy_signature(energy, theta, f, n, label=label, signatures=getattr(model, "energy_signatures", None))
    q0 = scale * jax.random.normal(kq, (n,), dtype)
    p0 = scale * jax.random.normal(kp, (n,), dtype)

    h_plus, h_minus = float(energy(q0, p0, theta, f)), float(energy(q0, -p0, theta, f))
    if not (math.isfinite(h_plus) and math.isfinite(h_minus)):
        raise ContractError(f"{label}: the energy is not finite at a random test state (H = {h_plus:.6g}); check theta")
    if abs(h_plus - h_minus) > rtol * (1.0 + abs(h_plus)):
        raise ContractError(
            f"{label}: the energy is not time-reversal invariant, it is not even in the momenta: H(q, p) = "
            f"{h_plus:.6g} but H(q, -p) = {h_minus:.6g}. RHEL needs H(q, p) = H(q, -p) (paper Def. A.1) so that the "
            "momentum-flipped echo retraces the forward run; make H depend on p through even terms only."
        )
    if not energy.separable or steps == 0:
        return 0.0
    q, p = q0, p0
    for f in fs:
        q, p, _ = leapfrog_step(energy, q, p, theta, f, dt=dt)
    p = -p
    for f in fs[::-1]:
        q, p, _ = leapfrog_step(energy, q, p, theta, f, dt=dt)
    p = -p
    size = float(jnp.max(jnp.abs(jnp.concatenate([q0, p0]))))
    err = float(jnp.max(jnp.abs(jnp.concatenate([q - q0, p - p0])))) / max(size, 1e-30)
    if not math.isfinite(err) or err > rtol:
        raise ContractError(
            f"{label}: forward -> momentum flip -> reversed replay does not come back (relative error {err:.3g} > "
            f"{rtol:.3g} after {steps} steps); the energy is not time-reversal invariant or the step is unstable, so "
            "RHEL's echoes would not carry the gradient."
        )
    return err
