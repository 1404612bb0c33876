"""Gradient methods: objects passed to a unit (``unit(u, gradient=RHEL())``), like diffrax's ``adjoint=``."""

from rhel.gradients.base import AbstractGradient as AbstractGradient
from rhel.gradients.bptt import BPTT as BPTT
from rhel.gradients.bptt import CheckpointedBPTT as CheckpointedBPTT
from rhel.gradients.numerics import EpsilonWarning as EpsilonWarning
from rhel.gradients.rhel import ESTIMATORS as ESTIMATORS
from rhel.gradients.rhel import RHEL as RHEL
from rhel.gradients.rhel import Estimator as Estimator
from rhel.gradients.rhel import default_epsilon as default_epsilon
