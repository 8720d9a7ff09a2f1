"""Test-time rules for a dropout-trained model.

`scale_weights(model)` turns a model trained with classical dropout (``inverted=False``)
into the deterministic network of the tutorial's rule "scale the outgoing weights by p":
each dropout layer is removed and the weights of the affine layer it feeds are multiplied
by its keep_prob.  Inverted dropout needs no scaling, so inverted `Dropout` layers are
simply removed and a `DropoutDense` becomes the `Dense` with the same ``W`` and ``b``.
The result makes the same predictions as ``model.eval()``.
"""
import copy

from .activations import ReLU
from .dense import Dense
from .dropout import Dropout
from .model import Sequential


def scale_weights(model):
    """A copy of `model` with dropout layers removed and following weights scaled by keep_prob.

    A classical `Dropout` must feed an affine layer (`Dense` or `DropoutDense`), directly
    or through `ReLU` layers (ReLU(p·x) = p·ReLU(x) for p ≥ 0, so the scaling moves through
    them); anything else (e.g. Tanh, or nothing) is a ValueError, since the rule would
    then not give the eval-mode network.  Biases are not scaled.  `model` is not changed.
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a fastdrop.nn.Sequential, got {type(model).__name__}")
    source = model.layers
    pending = 1.0
    pending_from = None
    layers = []
    for i, layer in enumerate(source):
        if isinstance(layer, Dropout):
            if not layer.inverted:
                pending *= layer.keep_prob
                pending_from = i
            continue
        if isinstance(layer, Dense):
            layers.append(_as_dense(layer, pending))
            pending, pending_from = 1.0, None
            continue
        if pending_from is not None and not isinstance(layer, ReLU):
            raise ValueError(f"classical Dropout at layers[{pending_from}] is followed by "
                             f"{type(layer).__name__} before any affine layer; its keep_prob "
                             "cannot be folded into weights")
        layers.append(copy.deepcopy(layer))
    if pending_from is not None:
        raise ValueError(f"classical Dropout at layers[{pending_from}] feeds no affine layer; "
                         "its keep_prob cannot be folded into weights")
    result = Sequential(layers)
    result.training = model.training
    return result


def _as_dense(layer, factor):
    W = layer.W.copy()
    if factor != 1.0:
        W *= W.dtype.type(factor)
    return Dense.from_arrays(W, layer.b.copy(), init=getattr(layer, "init", "he"))
