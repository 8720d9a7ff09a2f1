"""A NumPy toolkit for training networks with dropout, the masks drawn by fastdrop's kernels.

Layers (`Dense`, `Dropout`, `DropoutDense`, the activations and the dropout variants) have
``forward(x, training=True)``, ``backward(grad)`` and ``forward_eval(x)``; `Sequential`
stacks them, `build_mlp` builds an MLP, `fit` trains one with an optimizer (`SGD`,
`Adam`) and `SoftmaxCrossEntropy`, and `scale_weights` folds classical dropout into the
weights for inference.  `save` and `load` write and read checkpoints (`fastdrop.nn.checkpoint`
describes the format), which ``fit(..., checkpoint=path, resume=path)`` also uses.  ``import fastdrop`` does not load this package.
"""
from .activations import Activation, ReLU, Sigmoid, Tanh
from .checkpoint import Checkpoint, MaskStreamWarning, load, save
from .base import INITS, Layer, NoiseSource, Parameter, init_weights
from .dense import AffineLayer, Dense
from .dropout import MODES, STORES, Dropout, DropoutDense
from .inference import scale_weights
from .losses import SoftmaxCrossEntropy
from .model import ACTIVATIONS, Sequential, build_mlp, layer_seeds, softmax
from .optim import SGD, Adam, ExponentialLR, Optimizer, StepLR, apply_max_norm
from .train import History, evaluate, fit
from .variants import (AlphaDropout, ChannelDropout, DropConnectDense, Dropout1d, Dropout2d,
                       Dropout3d, FeatureAlphaDropout, GaussianDropout, SpatialDropout1D,
                       SpatialDropout2D, SpatialDropout3D, TimeLockedDropout, VariationalDropout)

__all__ = [
    # base
    "Layer", "Parameter", "NoiseSource", "init_weights", "INITS",
    # layers
    "AffineLayer", "Dense", "Dropout", "DropoutDense", "MODES", "STORES",
    "Activation", "ReLU", "Tanh", "Sigmoid",
    # variant layers
    "ChannelDropout", "Dropout1d", "Dropout2d", "Dropout3d", "SpatialDropout1D",
    "SpatialDropout2D", "SpatialDropout3D", "TimeLockedDropout", "VariationalDropout",
    "GaussianDropout", "AlphaDropout", "FeatureAlphaDropout", "DropConnectDense",
    # models and training
    "Sequential", "build_mlp", "layer_seeds", "softmax", "ACTIVATIONS",
    "SoftmaxCrossEntropy", "Optimizer", "SGD", "Adam", "StepLR", "ExponentialLR",
    "apply_max_norm", "fit", "evaluate", "History", "scale_weights",
    # checkpoints
    "save", "load", "Checkpoint", "MaskStreamWarning",
]
