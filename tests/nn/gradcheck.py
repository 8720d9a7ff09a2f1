"""Finite-difference gradients for the layer tests (not a test module)."""
import numpy as np


def numerical_grad(f, a, eps=1e-6):
    """Central differences of the scalar f() with respect to every element of a (in place)."""
    g = np.zeros_like(a)
    flat, gflat = a.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return g
