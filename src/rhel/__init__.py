"""rhel: Recurrent Hamiltonian Echo Learning in JAX.

Hamiltonian recurrent units (:class:`LinearHRU`, :class:`NonlinearHRU`, :class:`EnergyHRU`) defined by an
:class:`Energy`, and the gradient methods that differentiate them (:class:`RHEL`, :class:`BPTT`,
:class:`CheckpointedBPTT`), passed as objects: ``unit(u, gradient=rhel.RHEL())``. :mod:`rhel.physics` trains
continuous-time physical systems with the same energies, integrators, echo and gradient objects. A trained run
loads with :func:`load_run` (a model file with :func:`load_model`).
"""

from importlib.metadata import PackageNotFoundError, version

from rhel.energies import ContractError as ContractError
from rhel.energies import ContractWarning as ContractWarning
from rhel.energies import Energy as Energy
from rhel.energies import check_time_reversal as check_time_reversal
from rhel.gradients import BPTT as BPTT
from rhel.gradients import ESTIMATORS as ESTIMATORS
from rhel.gradients import RHEL as RHEL
from rhel.gradients import AbstractGradient as AbstractGradient
from rhel.gradients import CheckpointedBPTT as CheckpointedBPTT
from rhel.gradients import EpsilonWarning as EpsilonWarning
from rhel.gradients import default_epsilon as default_epsilon
from rhel.training.artifacts import ModelFileError as ModelFileError
from rhel.training.artifacts import TrainedModel as TrainedModel
from rhel.training.artifacts import load_model as load_model
from rhel.training.artifacts import load_run as load_run
from rhel.training.artifacts import save_model as save_model
from rhel.units import AbstractHRU as AbstractHRU
from rhel.units import EnergyHRU as EnergyHRU
from rhel.units import LinearHRU as LinearHRU
from rhel.units import NonlinearHRU as NonlinearHRU

try:
    __version__ = version("rhel")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
