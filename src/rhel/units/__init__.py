"""Hamiltonian recurrent units."""

from rhel.units.base import AbstractHRU as AbstractHRU
from rhel.units.energy import EnergyHRU as EnergyHRU
from rhel.units.linear import LinearHRU as LinearHRU
from rhel.units.nonlinear import NonlinearHRU as NonlinearHRU
