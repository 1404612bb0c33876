"""Hamiltonian state-space models: stacks of HRUs with feed-forward blocks and a task head."""

from rhel.models._blocks import GLU as GLU
from rhel.models._blocks import HSSMBlock as HSSMBlock
from rhel.models._heads import ClassificationHead as ClassificationHead
from rhel.models._heads import RegressionHead as RegressionHead
from rhel.models._hssm import BATCH_AXIS as BATCH_AXIS
from rhel.models._hssm import HSSM as HSSM
from rhel.models._hssm import apply_batch as apply_batch
from rhel.models._hssm import batch_loss as batch_loss
from rhel.models._hssm import make_unit as make_unit

__all__ = [
    "BATCH_AXIS",
    "apply_batch",
    "batch_loss",
    "GLU",
    "HSSM",
    "HSSMBlock",
    "ClassificationHead",
    "RegressionHead",
    "make_unit",
]
