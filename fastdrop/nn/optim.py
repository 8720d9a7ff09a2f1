"""Optimizers (SGD with momentum/Nesterov, Adam), max-norm, weight decay, LR schedules.

An optimizer updates the parameters of a model in place: ``opt.step(model)`` reads
``model.param_groups()`` (a list of `fastdrop.nn.Parameter`, or pass such a list
directly).  ``weight_decay`` (L2) and ``max_norm`` act only on parameters of kind
``"weight"`` (the weight matrices ``W`` of shape (in, out)), never on biases.
``max_norm=c`` rescales, after every step, each column of every ``W`` (one unit's
incoming weight vector) whose L2 norm exceeds c back to norm c (Srivastava et al. 2014).

State (velocities, moments) is kept per position in that list, so step the same model
each time.  ``schedule`` is a callable ``epoch -> factor``; `begin_epoch(e)` (the trainer
calls it) sets ``lr = base_lr * schedule(e)``.

For checkpoints an optimizer describes itself as plain data: `config()` (its type's
constructor arguments, the schedule included, as JSON values), `export_state()` (the
step count, the current lr and the per-parameter arrays: ``"<i>.velocity"`` for SGD with
momentum, ``"<i>.m"`` / ``"<i>.v"`` for Adam, i the parameter's position) and
`import_state(model, scalars, arrays)`, which checks everything before it changes anything.
"""
import math

import numpy as np

from ._checks import check_flag, check_int, is_int, is_real

#: Elements per block of the blocked parameter update (a few such blocks fit in L2).
BLOCK_ELEMENTS = 1 << 16


def _check_real(value, name, *, low=0.0, low_open=False, high=None):
    if not is_real(value):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    bad = math.isnan(value) or value < low or (low_open and value == low) or (high is not None and value >= high)
    if bad:
        bound = f"({low}" if low_open else f"[{low}"
        bound += f", {high})" if high is not None else ", inf)"
        raise ValueError(f"{name} must be in {bound}, got {value!r}")
    return value


class StepLR:
    """Multiply the learning rate by `gamma` every `step_size` epochs."""

    def config(self):
        return {"type": "StepLR", "step_size": self.step_size, "gamma": self.gamma}

    def __init__(self, step_size, gamma=0.1):
        self.step_size = check_int(step_size, "step_size", 1)
        self.gamma = _check_real(gamma, "gamma", low=0.0, low_open=True)

    def __call__(self, epoch):
        return self.gamma ** (int(epoch) // self.step_size)

    def __repr__(self):
        return f"StepLR(step_size={self.step_size}, gamma={self.gamma})"


class ExponentialLR:
    """Multiply the learning rate by `gamma` every epoch."""

    def __init__(self, gamma):
        self.gamma = _check_real(gamma, "gamma", low=0.0, low_open=True)

    def config(self):
        return {"type": "ExponentialLR", "gamma": self.gamma}

    def __call__(self, epoch):
        return self.gamma ** int(epoch)

    def __repr__(self):
        return f"ExponentialLR(gamma={self.gamma})"


SCHEDULES = {"StepLR": StepLR, "ExponentialLR": ExponentialLR}


def schedule_config(schedule):
    """A schedule as JSON data: None, the config of a built-in one, or ``{"type": "custom"}``
    (with its repr) for any other callable, which no file can hold."""
    if schedule is None:
        return None
    if type(schedule) in SCHEDULES.values():
        return schedule.config()
    return {"type": "custom", "repr": repr(schedule)}


class MissingSchedule:
    """Stands in for a custom schedule a checkpoint could not hold: calling it is an error."""

    def __init__(self, description):
        self.description = description

    def __call__(self, epoch):
        raise ValueError(f"this optimizer's schedule was a custom callable ({self.description}) "
                         "that a checkpoint cannot hold; assign optimizer.schedule before training")

    def config(self):
        return {"type": "custom", "repr": self.description}


def schedule_from_config(config):
    """The schedule `schedule_config` described (a `MissingSchedule` for a custom one)."""
    if config is None:
        return None
    kind = config["type"]
    if kind == "custom":
        return MissingSchedule(str(config.get("repr", "")))
    if kind not in SCHEDULES:
        raise ValueError(f"unknown schedule type {kind!r}")
    return SCHEDULES[kind](**{k: v for k, v in config.items() if k != "type"})


def _parameters(target):
    if hasattr(target, "param_groups"):
        return target.param_groups()
    groups = list(target)
    for i, p in enumerate(groups):
        if not (hasattr(p, "value") and hasattr(p, "grad") and hasattr(p, "kind")):
            raise TypeError(f"step() needs a model with param_groups() or a list of Parameter; "
                            f"item {i} is {type(p).__name__}")
    return groups


def apply_max_norm(W, max_norm):
    """Rescale in place each column of W whose L2 norm exceeds max_norm back to max_norm."""
    norms = np.sqrt(np.einsum("ij,ij->j", W, W))
    over = norms > max_norm
    if over.any():
        factor = np.ones_like(norms)
        factor[over] = max_norm / norms[over]
        W *= factor
    return W


class Optimizer:
    """Shared parts: learning rate and schedule, weight decay, max-norm, per-parameter state."""

    def __init__(self, lr, weight_decay, max_norm, schedule):
        self.lr = _check_real(lr, "lr", low=0.0, low_open=True)
        self.base_lr = self.lr
        self.weight_decay = _check_real(weight_decay, "weight_decay")
        self.max_norm = None if max_norm is None else _check_real(max_norm, "max_norm", low=0.0, low_open=True)
        if schedule is not None and not callable(schedule):
            raise TypeError(f"schedule must be callable (epoch -> factor), got {type(schedule).__name__}")
        self.schedule = schedule
        self.iterations = 0
        self._state = []

    #: Per-parameter state arrays a checkpoint must keep (the rest is scratch).
    SLOTS = ()

    def config(self):
        """The constructor arguments, as JSON values (``lr`` is the base rate)."""
        return {"lr": self.base_lr, "weight_decay": self.weight_decay, "max_norm": self.max_norm,
                "schedule": schedule_config(self.schedule)}

    def export_state(self):
        """``(scalars, arrays)``: the step count and current lr, and every per-parameter
        state array by ``"<position>.<slot>"`` (the live arrays, not copies)."""
        arrays = {}
        for i, state in enumerate(self._state):
            if state is None:
                continue
            for slot in self.SLOTS:
                if state.get(slot) is not None:
                    arrays[f"{i}.{slot}"] = state[slot]
        return {"iterations": self.iterations, "lr": self.lr}, arrays

    def import_state(self, model, scalars, arrays):
        """Take over what `export_state` gave, for the parameters of `model`.

        Every array is checked against its parameter's shape and dtype before anything
        changes, so a mismatch (ValueError) leaves the optimizer as it was.
        """
        groups = _parameters(model)
        iterations = scalars["iterations"]
        lr = scalars["lr"]
        if not is_int(iterations) or iterations < 0 or not is_real(lr):
            raise ValueError(f"optimizer state must hold a step count and a learning rate, got "
                             f"iterations={iterations!r}, lr={lr!r}")
        by_position = {}
        for key, array in arrays.items():
            position, _, slot = key.partition(".")
            if not position.isdigit() or int(position) >= len(groups) or slot not in self.SLOTS:
                raise ValueError(f"optimizer state array {key!r} does not fit a {type(self).__name__} "
                                 f"of a model with {len(groups)} parameters")
            value = groups[int(position)].value
            if array.shape != value.shape or array.dtype != value.dtype:
                raise ValueError(f"optimizer state array {key!r} has shape {array.shape} and dtype "
                                 f"{array.dtype}; its parameter has {value.shape} and {value.dtype}")
            by_position.setdefault(int(position), {})[slot] = array
        states = [None] * len(groups) if by_position else []
        for position, slots in by_position.items():
            state = states[position] = self._new_state(groups[position].value)
            for slot, array in slots.items():
                if state.get(slot) is None:
                    raise ValueError(f"optimizer state array '{position}.{slot}' is not used by "
                                     f"{self!r}")
                np.copyto(state[slot], array)
        self._state = states
        self.iterations = int(iterations)
        self.lr = float(lr)

    def begin_epoch(self, epoch):
        """Set the learning rate for `epoch` (0-based) from the schedule, if any."""
        if self.schedule is not None:
            self.lr = self.base_lr * float(self.schedule(epoch))
        return self.lr

    def step(self, model):
        """Update every parameter of `model` in place from its gradient."""
        groups = _parameters(model)
        if len(self._state) != len(groups):
            if self._state:
                raise ValueError(f"this optimizer was stepping {len(self._state)} parameters, "
                                 f"now got {len(groups)}; use one optimizer per model")
            self._state = [None] * len(groups)
        self.iterations += 1
        for i, p in enumerate(groups):
            value, grad = p.value, p.grad
            if grad.shape != value.shape:
                raise ValueError(f"{p!r}: gradient has shape {grad.shape}, expected {value.shape}")
            state = self._state[i]
            if state is None or state["shape"] != value.shape or state["dtype"] != value.dtype:
                state = self._state[i] = self._new_state(value)
            self._step_one(value, grad, state, p.kind == "weight")

    def _step_one(self, value, grad, state, is_weight):
        # The update makes several elementwise passes; running all of them on one block of
        # rows at a time keeps the block in cache, instead of streaming every array through
        # memory once per pass.
        decay = is_weight and self.weight_decay
        clip = is_weight and self.max_norm is not None and value.ndim == 2
        square_sums = np.zeros(value.shape[1], dtype=np.float64) if clip else None
        rows = state["block_rows"]
        for start in range(0, value.shape[0] if value.ndim else 1, rows):
            block = slice(start, start + rows) if value.ndim else Ellipsis
            w, g = value[block], grad[block]
            if decay:
                decayed = state["decayed"][:w.shape[0]] if value.ndim else state["decayed"]
                np.multiply(w, value.dtype.type(self.weight_decay), out=decayed)
                decayed += g
                g = decayed
            self._update(w, g, state, block)
            if clip:
                square_sums += np.einsum("ij,ij->j", w, w)
        if clip:
            norms = np.sqrt(square_sums)
            over = norms > self.max_norm
            if over.any():
                factor = np.ones(value.shape[1], dtype=value.dtype)
                factor[over] = self.max_norm / norms[over]
                value *= factor

    def _new_state(self, value):
        per_row = int(np.prod(value.shape[1:], dtype=np.int64)) if value.ndim > 1 else 1
        rows = max(1, BLOCK_ELEMENTS // max(1, per_row))
        block_shape = ((min(rows, value.shape[0]),) + value.shape[1:]) if value.ndim else ()
        return {"shape": value.shape, "dtype": value.dtype, "block_rows": rows,
                "scratch": np.empty(block_shape, dtype=value.dtype),
                "decayed": np.empty(block_shape, dtype=value.dtype) if self.weight_decay else None}

    def _update(self, value, grad, state, block):
        """Update the block `value` (rows `block` of the parameter) from `grad`."""
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with (Nesterov) momentum, as PyTorch defines it.

    ``v = momentum * v + g``; ``w -= lr * v`` (or ``w -= lr * (g + momentum * v)`` with
    ``nesterov``), where g includes ``weight_decay * w`` for weight matrices.
    """

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0, max_norm=None,
                 *, schedule=None):
        super().__init__(lr, weight_decay, max_norm, schedule)
        self.momentum = _check_real(momentum, "momentum", high=1.0)
        self.nesterov = check_flag(nesterov, "nesterov")
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("nesterov=True needs momentum > 0")

    SLOTS = ("velocity",)

    def config(self):
        return {**super().config(), "momentum": self.momentum, "nesterov": self.nesterov}

    def _new_state(self, value):
        state = super()._new_state(value)
        state["velocity"] = np.zeros_like(value) if self.momentum else None
        return state

    def _update(self, value, grad, state, block):
        scratch = state["scratch"][:value.shape[0]] if value.ndim else state["scratch"]
        lr = value.dtype.type(self.lr)
        if not self.momentum:
            np.multiply(grad, lr, out=scratch)
            value -= scratch
            return
        velocity = state["velocity"][block]
        velocity *= value.dtype.type(self.momentum)
        velocity += grad
        if self.nesterov:
            np.multiply(velocity, value.dtype.type(self.momentum), out=scratch)
            scratch += grad
            scratch *= lr
        else:
            np.multiply(velocity, lr, out=scratch)
        value -= scratch

    def __repr__(self):
        return (f"SGD(lr={self.lr}, momentum={self.momentum}, nesterov={self.nesterov}, "
                f"weight_decay={self.weight_decay}, max_norm={self.max_norm})")


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction; weight decay is added to the gradient (L2)."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, max_norm=None,
                 *, schedule=None):
        super().__init__(lr, weight_decay, max_norm, schedule)
        self.beta1 = _check_real(beta1, "beta1", high=1.0)
        self.beta2 = _check_real(beta2, "beta2", high=1.0)
        self.eps = _check_real(eps, "eps", low=0.0, low_open=True)

    SLOTS = ("m", "v")

    def config(self):
        return {**super().config(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def _new_state(self, value):
        state = super()._new_state(value)
        state["m"] = np.zeros_like(value)
        state["v"] = np.zeros_like(value)
        return state

    def step(self, model):
        self._t = self.iterations + 1
        super().step(model)

    def _update(self, value, grad, state, block):
        dt = value.dtype.type
        t = self._t
        m, v = state["m"][block], state["v"][block]
        scratch = state["scratch"][:value.shape[0]] if value.ndim else state["scratch"]
        m *= dt(self.beta1)
        np.multiply(grad, dt(1 - self.beta1), out=scratch)
        m += scratch
        v *= dt(self.beta2)
        np.multiply(grad, grad, out=scratch)
        scratch *= dt(1 - self.beta2)
        v += scratch
        step_size = self.lr * math.sqrt(1 - self.beta2 ** t) / (1 - self.beta1 ** t)
        np.sqrt(v, out=scratch)
        scratch += dt(self._epsilon(t))
        np.divide(m, scratch, out=scratch)
        scratch *= dt(step_size)
        value -= scratch

    def _epsilon(self, t):
        """What step t adds to sqrt(v): eps scaled by v's bias correction, as PyTorch does."""
        return self.eps * math.sqrt(1 - self.beta2 ** t)

    def __repr__(self):
        return (f"Adam(lr={self.lr}, beta1={self.beta1}, beta2={self.beta2}, eps={self.eps}, "
                f"weight_decay={self.weight_decay}, max_norm={self.max_norm})")
