"""fastdrop: the fastest exact dropout for NumPy on the CPU.

Fused Philox4x32-10 mask sampling, masking and inverted scaling in one pass over memory,
with bit-packed masks, bit-identical to the pure-NumPy `fastdrop.reference`.  The random
stream, mask format and numerics are fixed by the design contract (DESIGN.md in the
source distribution).
"""
from . import config, reference
from ._kernels import MASK_STREAM_VERSION
from .api import (alpha_dropout, alpha_dropout_backward, apply_mask, dropout, dropout_backward,
                  gaussian_dropout, gaussian_dropout_backward, sample_mask)
from .config import get_num_threads, set_num_threads, simd_level
from .mask import Mask

__version__ = "0.3.0"
config._register_with_threadpoolctl(__version__)
__all__ = ["dropout", "sample_mask", "apply_mask", "dropout_backward", "Mask", "reference",
           "alpha_dropout", "alpha_dropout_backward", "gaussian_dropout",
           "gaussian_dropout_backward", "config",
           "get_num_threads", "set_num_threads", "simd_level", "MASK_STREAM_VERSION",
           "__version__"]
