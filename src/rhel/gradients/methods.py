"""The one table of gradient methods: the name a config or the command line uses, its label, and its factory.

Everything that names gradient methods derives from :data:`GRADIENT_METHODS`: the training config's validation and
``rhel train --gradient``, the results tables' labels, ``rhel bench --methods`` and ``rhel gradcheck --estimator``.
The RHEL rows come from :data:`rhel.gradients.rhel.ESTIMATORS`, so an estimator added there appears everywhere.
To add another gradient method, add one row to :func:`_table`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rhel.gradients import AbstractGradient
from rhel.gradients.bptt import BPTT, CheckpointedBPTT
from rhel.gradients.rhel import ESTIMATORS, RHEL

#: The name of the RHEL estimator that ``rhel`` (without a suffix) stands for: the paper's.
PAPER_ESTIMATOR = "central"


@dataclass(frozen=True)
class GradientMethod:
    """One gradient method.

    **Arguments:**

    - `name`: the name configs and the command line use (``"rhel-one-sided"``).
    - `label`: how tables and plots write it (``"RHEL (one-sided)"``).
    - `factory`: ``factory(epsilon, relative, resync_every, check)`` returns the gradient object; BPTT variants
      ignore all four.
    - `estimator`: the RHEL estimator's name (a key of :data:`rhel.gradients.rhel.ESTIMATORS`), ``None`` otherwise.
    """

    name: str
    label: str
    factory: Callable[[float | None, bool, int | None, str], AbstractGradient]
    estimator: str | None = None

    @property
    def symmetric(self) -> bool:
        """An RHEL method whose estimator is symmetric (:attr:`rhel.gradients.echo.Estimator.symmetric`): it can
        re-synchronise."""
        return self.estimator is not None and ESTIMATORS[self.estimator].symmetric

    def make(
        self, epsilon: float | None = None, relative: bool = True, resync_every: int | None = None, check: str = "raise"
    ) -> AbstractGradient:
        """The gradient object (``epsilon``, ``relative``, ``resync_every`` and ``check`` are RHEL's settings)."""
        return self.factory(epsilon, relative, resync_every, check)


#: How an estimator's name is written in a label where it is not written in lower case.
_PROPER_NAMES = {"richardson": "Richardson"}


def _rhel(estimator: str) -> GradientMethod:
    words = estimator.replace("_", "-")
    paper = estimator == PAPER_ESTIMATOR
    return GradientMethod(
        name="rhel" if paper else f"rhel-{words}",
        label="RHEL" if paper else f"RHEL ({_PROPER_NAMES.get(estimator, words)})",
        factory=lambda epsilon, relative, resync_every, check: RHEL(
            epsilon=epsilon, estimator=estimator, relative=relative, resync_every=resync_every, check=check
        ),
        estimator=estimator,
    )


def _table() -> dict[str, GradientMethod]:
    rows = [
        GradientMethod("bptt", "BPTT", lambda *rhel_settings: BPTT()),
        GradientMethod("checkpointed-bptt", "Checkpointed BPTT", lambda *rhel_settings: CheckpointedBPTT()),
        *(_rhel(estimator) for estimator in ESTIMATORS),
    ]
    return {row.name: row for row in rows}


#: name -> :class:`GradientMethod`, in the order tables list them (BPTT first, then RHEL's estimators).
GRADIENT_METHODS: dict[str, GradientMethod] = _table()
#: The names, for ``choices=`` and error messages.
METHOD_NAMES: tuple[str, ...] = tuple(GRADIENT_METHODS)
#: RHEL estimator name -> the method name that runs it (``"one_sided"`` -> ``"rhel-one-sided"``).
ESTIMATOR_METHODS: dict[str, str] = {m.estimator: m.name for m in GRADIENT_METHODS.values() if m.estimator}


def method_label(name: str) -> str:
    """The label of a method name (the name itself for a name not in the table, e.g. from an older run)."""
    method = GRADIENT_METHODS.get(name)
    return name if method is None else method.label


def make_gradient(
    name: str,
    epsilon: float | None = None,
    relative: bool = True,
    resync_every: int | None = None,
    check: str = "raise",
) -> AbstractGradient:
    """The gradient object for a method name; a ``KeyError`` names the known methods for an unknown one.

    **Arguments:**

    - `name`: a key of :data:`GRADIENT_METHODS`.
    - `epsilon`: RHEL's nudging strength (``None``: the estimator's default for the computation's dtype).
    - `relative`: RHEL's nudge relative to the incoming gradient's size (see :class:`rhel.gradients.rhel.RHEL`).
    - `resync_every`: re-synchronise RHEL's echo on the forward state every this many steps (``None``: never; see
      :class:`rhel.gradients.rhel.RHEL`).
    - `check`: what RHEL does when its run-time contract checks fail (``"raise"``, ``"warn"`` or ``"off"``; see
      :class:`rhel.gradients.rhel.RHEL`): the reports, which measure cost or the error themselves, pass ``"warn"``.
    """
    if name not in GRADIENT_METHODS:
        raise KeyError(f"unknown gradient method {name!r}; expected one of {', '.join(METHOD_NAMES)}")
    return GRADIENT_METHODS[name].make(epsilon, relative, resync_every, check)
