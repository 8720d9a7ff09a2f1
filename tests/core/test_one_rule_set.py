"""One rule set: for any call of a public function, valid or not, fastdrop (fast path and
general path) and fastdrop.reference agree: the same bits, or the same first error."""
import inspect
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastdrop
from fastdrop import Mask, _general, reference

FUNCTIONS = ["dropout", "sample_mask", "apply_mask", "dropout_backward", "alpha_dropout",
             "alpha_dropout_backward", "gaussian_dropout", "gaussian_dropout_backward"]

PROFILE = settings(max_examples=100, derandomize=True, database=None, deadline=None,
                   suppress_health_check=list(HealthCheck))

SHAPES = [(), (0,), (1,), (5,), (3, 4), (2, 0, 3), (4, 1, 3)]


def _array(shape, dtype, layout):
    """A fresh array of `shape`: contiguous, strided, non-native, read-only, or a list."""
    rng = np.random.default_rng(len(shape) * 7 + sum(shape))
    size = int(np.prod(shape))
    if np.dtype(dtype).kind == "f":
        values = rng.standard_normal(size).astype(dtype)
        if size:
            values[0] = -0.0
        if size > 2:
            values[1], values[2] = np.nan, np.inf
    else:
        values = (rng.standard_normal(size) > 0).astype(dtype)
    a = values.reshape(shape)
    if layout == "strided" and a.ndim:
        wide = np.repeat(a, 2, axis=-1)
        return wide[..., ::2]
    if layout == "swapped":
        return a.astype(a.dtype.newbyteorder())
    if layout == "list":
        return a.tolist()
    return a


@st.composite
def arrays(draw, shape):
    dtype = draw(st.sampled_from([np.float32, np.float64, np.float16, np.float64, np.float32,
                                  np.int32, np.bool_, np.complex64]))
    layout = draw(st.sampled_from(["plain", "plain", "plain", "strided", "swapped", "list"]))
    return lambda: _array(shape, dtype, layout)


def const(v):
    return lambda: v


RATES = [0.0, 0.25, 0.5, 1.0, 0.999, -0.1, 1.5, float("nan"), True, "0.5", np.float32(0.25), 1,
         10**400]
KEEPS = [0.75, 0.0, 1.0, 1e-320, 2.0, float("nan"), False, "x", np.float64(0.4)]
SEEDS = [0, 1, 12345, 2**64 - 1, 2**64, -1, 1.5, True, "s", np.uint64(7), "generator"]
POSITIONS = [0, 3, 5, 2**64 - 1, 2**63, 2**64, -1, 2.5, None, True, np.int64(4)]
FLAGS = [True, False, np.bool_(True), "yes", "no", None, 1]


def _seed_factory(v):
    if v == "generator":
        return lambda: np.random.default_rng(42)
    return const(v)


@st.composite
def maybe(draw, name, values, factory=const):
    """(name, factory) or None (argument omitted)."""
    if draw(st.booleans()):
        return None
    return name, factory(draw(st.sampled_from(values)))


@st.composite
def noise_shapes(draw, shape, partial=True):
    """partial: may keep some axes whole (None entries); not with sample_mask's huge shapes."""
    choices = ["omit", "none", "ones", "some", "rank", "neg", "str", "float"]
    choice = draw(st.sampled_from(choices if partial else choices[:3] + choices[4:]))
    if choice == "omit":
        return None
    v = {"none": None, "ones": tuple(1 for _ in shape),
         "some": tuple(None if i % 2 else 1 for i, _ in enumerate(shape)),
         "rank": tuple(shape) + (1,), "neg": tuple(-1 for _ in shape) or (-1,), "str": "ab",
         "float": tuple(1.5 for _ in shape) or (1.5,)}[choice]
    return "noise_shape", const(v)


def _mask_of(shape, kind):
    other = (7,) if shape != (7,) else (6,)
    if kind == "mask":
        return lambda: fastdrop.sample_mask(shape, seed=11, offset=2)
    if kind == "mask-wrong-shape":
        return lambda: fastdrop.sample_mask(other, seed=11)
    if kind == "mask-noise-shape":
        return lambda: fastdrop.sample_mask(tuple(1 for _ in shape), seed=11)
    if kind == "bool":
        return lambda: np.arange(int(np.prod(shape))).reshape(shape) % 3 == 0
    if kind == "int":
        return lambda: (np.arange(int(np.prod(shape))).reshape(shape) % 3).astype(np.int8)
    if kind == "bool-list":
        return lambda: (np.arange(int(np.prod(shape))).reshape(shape) % 2 == 0).tolist()
    return const({"none": None, "str": "m"}[kind])


@st.composite
def masks(draw, shape, required):
    kinds = ["mask", "mask", "mask-wrong-shape", "mask-noise-shape", "bool", "int", "bool-list",
             "str", "none"]
    if not required and draw(st.booleans()):
        return None
    return "mask", _mask_of(shape, draw(st.sampled_from(kinds)))


def _out_of(shape, dtype, kind):
    other = np.float64 if np.dtype(dtype) != np.float64 else np.float32
    return {
        "good": lambda: np.full(shape, 7.0, dtype),
        "strided": lambda: np.full(tuple(shape[:-1]) + (2 * shape[-1],), 7.0, dtype)[..., ::2]
        if shape else np.full(shape, 7.0, dtype),
        "dtype": lambda: np.full(shape, 7.0, other),
        "shape": lambda: np.full(tuple(shape) + (2,), 7.0, dtype),
        "readonly": lambda: np.lib.stride_tricks.as_strided(np.full(shape, 7.0, dtype),
                                                            writeable=False),
        "list": lambda: [7.0],
    }[kind]


@st.composite
def outs(draw, shape, dtype):
    if draw(st.booleans()):
        return None
    kind = draw(st.sampled_from(["good", "good", "strided", "dtype", "shape", "readonly", "list"]))
    return "out", _out_of(shape, dtype, kind)


def _noise_of(shape, dtype, kind):
    work = np.float64 if np.dtype(dtype) == np.float64 else np.float32
    if kind == "good":
        return lambda: reference.gaussian_dropout(np.ones(shape, work), seed=3,
                                                  return_noise=True)[1]
    if kind == "dtype":
        return lambda: np.ones(shape, np.float16)
    if kind == "shape":
        return lambda: np.ones(tuple(shape) + (3,), work)
    return const({"list": [1.0], "none": None}[kind])


@st.composite
def calls(draw, name):
    """(name, factory of (args, kwargs)): every argument built fresh for each path."""
    shape = draw(st.sampled_from(SHAPES))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.float16]))
    parts = []
    if name == "sample_mask":
        shape_arg = draw(st.sampled_from(
            [shape, 5, (2**32, 2**32), (2**63,), (2**64 + 1,), (-1,), (2.0,), (True,), "ab",
             [3, 2], np.int64(4), None]))
        positional = [const(shape_arg)]
    else:
        positional = [draw(st.one_of(st.just(lambda: _array(shape, dtype, "plain")),
                                     arrays(shape), st.just(const(None)), st.just(const("x")))),
                      ]
    backward = name.endswith("_backward")
    if name in ("apply_mask", "dropout_backward", "alpha_dropout_backward"):
        m = draw(masks(shape, required=name == "apply_mask"))
        if m is not None:
            parts.append(m)
    if name == "gaussian_dropout_backward" and draw(st.booleans()):
        parts.append(("noise", _noise_of(shape, dtype, draw(st.sampled_from(
            ["good", "good", "dtype", "shape", "list", "none"])))))
    if name in ("dropout", "alpha_dropout"):
        m = draw(masks(shape, required=False))
        if m is not None and draw(st.booleans()):
            parts.append(m)
    parts.append(draw(maybe("rate", RATES)))
    parts.append(draw(maybe("keep_prob", KEEPS)))
    if name != "apply_mask":
        if not backward or draw(st.booleans()):
            parts.append(("seed", _seed_factory(draw(st.sampled_from(SEEDS)))))
        parts.append(draw(maybe("stream", POSITIONS)))
        parts.append(draw(maybe("offset", POSITIONS)))
    if name in ("dropout", "sample_mask", "dropout_backward", "alpha_dropout",
                "alpha_dropout_backward"):
        parts.append(draw(noise_shapes(shape, partial=name != "sample_mask")))
    if name in ("dropout", "alpha_dropout", "gaussian_dropout"):
        parts.append(draw(maybe("training", FLAGS)))
    if name in ("dropout", "apply_mask", "dropout_backward"):
        parts.append(draw(maybe("inverted", FLAGS)))
    if name in ("dropout", "alpha_dropout"):
        parts.append(draw(maybe("return_mask", FLAGS)))
    if name == "gaussian_dropout":
        parts.append(draw(maybe("return_noise", FLAGS)))
    if name != "sample_mask":
        parts.append(draw(outs(shape, dtype)))
    parts = [p for p in parts if p is not None]

    def build():
        args = [f() for f in positional]
        kwargs = {k: f() for k, f in parts}
        if name != "sample_mask" and "mask" in kwargs and name != "dropout" \
                and name != "alpha_dropout":
            args.append(kwargs.pop("mask"))
        if "noise" in kwargs:
            args.append(kwargs.pop("noise"))
        return args, kwargs
    return build


def _outcome(function, build):
    args, kwargs = build()
    try:
        return "ok", function(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        return "error", exc


def _general_function(name):
    """The general path with the public signature (api passes its arguments in order)."""
    signature = inspect.signature(getattr(fastdrop, name))

    def call(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return getattr(_general, name)(*bound.arguments.values())
    return call


def _bits_of(a):
    a = np.ascontiguousarray(a)
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def assert_same_result(got, want, seeded):
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, w in zip(got, want):
            assert_same_result(g, w, seeded)
    elif want is None:
        assert got is None
    elif isinstance(want, Mask):
        assert isinstance(got, Mask)
        assert got.shape == want.shape and got.keep_prob == want.keep_prob
        assert got.scale == want.scale
        if seeded:
            assert got == want
            assert (got.seed, got.stream, got.offset) == (want.seed, want.stream, want.offset)
    else:
        assert type(want) is np.ndarray, f"the reference returned {type(want).__name__}"
        assert type(got) is np.ndarray, f"fastdrop returned {type(got).__name__}"
        assert got.shape == want.shape and got.dtype == want.dtype
        if seeded:
            np.testing.assert_array_equal(_bits_of(got), _bits_of(want))


def check_one_rule(name, build):
    params = list(inspect.signature(getattr(fastdrop, name)).parameters)
    want_kind, want = _outcome(getattr(reference, name), build)
    seeded = "seed" in build()[1] or name.endswith("_backward") or name == "apply_mask"
    for function in (getattr(fastdrop, name), _general_function(name)):
        kind, got = _outcome(function, build)
        if want_kind == "error":
            assert kind == "error", f"reference raised {want!r}; fastdrop returned"
            assert type(got) is type(want) and str(got) == str(want)
            assert any(re.search(rf"\b{p}\b", str(got)) for p in params), str(got)
        else:
            assert kind == "ok", f"fastdrop raised {got!r}; the reference returned"
            assert_same_result(got, want, seeded)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_one_rule_set(name):
    @PROFILE
    @given(calls(name))
    def run(build):
        check_one_rule(name, build)
    run()
