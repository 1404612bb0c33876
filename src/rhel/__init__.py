"""rhel: Recurrent Hamiltonian Echo Learning in JAX.

Hamiltonian recurrent units (:class:`LinearHRU`, :class:`NonlinearHRU`, :class:`EnergyHRU`) defined by an
:class:`Energy`, and the gradient methods that differentiate them (:class:`RHEL`, :class:`BPTT`,
:class:`CheckpointedBPTT`), passed as objects: ``unit(u, gradient=rhel.RHEL())``. :mod:`rhel.physics` trains
continuous-time physical systems with the same energies, integrators, echo and gradient objects.
"""

from importlib.metadata import PackageNotFoundError, version

from rhel.energies import ContractError as ContractError
from rhel.energies import Energy as Energy
from rhel.energies import check_time_reversal as check_time_reversal
from rhel.gradients import BPTT as BPTT
from rhel.gradients import ESTIMATORS as ESTIMATORS
from rhel.gradients import RHEL as RHEL
from rhel.gradients import AbstractGradient as AbstractGradient
from rhel.gradients import CheckpointedBPTT as CheckpointedBPTT
from rhel.gradients import default_epsilon as default_epsilon
from rhel.units import AbstractHRU as AbstractHRU
from rhel.units import EnergyHRU as EnergyHRU
from rhel.units import LinearHRU as LinearHRU
from rhel.units import NonlinearHRU as NonlinearHRU

try:
    __version__ = version("rhel")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
