"""Task losses, one per module, each a small function with its formula in the docstring.

All return the mean over the batch (a scalar), and take plain tensors, so any trainer can call them.
"""

from mg_heads.losses.bradley_terry import bradley_terry
from mg_heads.losses.cosent import cosent
from mg_heads.losses.cross_entropy import cross_entropy
from mg_heads.losses.info_nce import info_nce
from mg_heads.losses.listwise_ce import listwise_ce
from mg_heads.losses.matryoshka import matryoshka
from mg_heads.losses.mse import mse
from mg_heads.losses.multilabel_bce import multilabel_bce
from mg_heads.losses.pointwise_bce import pointwise_bce

__all__ = [
    "bradley_terry",
    "cosent",
    "cross_entropy",
    "info_nce",
    "listwise_ce",
    "matryoshka",
    "mse",
    "multilabel_bce",
    "pointwise_bce",
]
