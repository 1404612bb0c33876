"""Hamiltonian recurrent units."""

from rhel.units.base import AbstractHRU as AbstractHRU
from rhel.units.energy import ContractError as ContractError
from rhel.units.energy import EnergyHRU as EnergyHRU
from rhel.units.energy import check_time_reversal as check_time_reversal
from rhel.units.linear import LinearHRU as LinearHRU
from rhel.units.nonlinear import NonlinearHRU as NonlinearHRU
