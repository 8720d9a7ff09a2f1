"""What `seed` takes, and the one way each kind maps to the 64-bit Philox key.

int -> itself; SeedSequence -> its first two uint32 state words (k0, k1); BitGenerator ->
the key of its seed_seq, whatever its state; Generator -> one uint64 draw (it advances);
None -> fresh entropy.  Every public function that samples, and fastdrop.reference, give
bit-identical results for a seed and for the int key it maps to; bool, float and other
types are a TypeError naming seed.  The expected keys are computed here from NumPy alone.
"""
import numpy as np
import pytest

import fastdrop
from fastdrop import reference
from fastdrop._validate import resolve_seed

from conftest import assert_bit_equal

SEED_KINDS = ["int", "numpy uint64", "SeedSequence", "spawned SeedSequence", "PCG64",
              "Philox", "SFC64 advanced", "Generator"]


def seed_and_key(kind):
    """A fresh seed object of `kind` and the key it must map to, from NumPy's own calls."""
    words = np.random.SeedSequence(2024).generate_state(2, np.uint32)
    sequence_key = int(words[0]) | (int(words[1]) << 32)
    if kind == "int":
        return 0xDEADBEEF12345678, 0xDEADBEEF12345678
    if kind == "numpy uint64":
        return np.uint64(2**64 - 3), 2**64 - 3
    if kind == "SeedSequence":
        return np.random.SeedSequence(2024), sequence_key
    if kind == "spawned SeedSequence":
        child = np.random.SeedSequence(2024).spawn(2)[1]
        child_words = np.random.SeedSequence(2024, spawn_key=(1,)).generate_state(2, np.uint32)
        return child, int(child_words[0]) | (int(child_words[1]) << 32)
    if kind == "PCG64":
        return np.random.PCG64(2024), sequence_key
    if kind == "Philox":
        return np.random.Philox(np.random.SeedSequence(2024)), sequence_key
    if kind == "SFC64 advanced":
        bit_generator = np.random.SFC64(2024)
        bit_generator.random_raw(5)  # its state does not matter, only its SeedSequence
        return bit_generator, sequence_key
    if kind == "Generator":
        return np.random.default_rng(2024), int(np.random.PCG64(2024).random_raw())
    raise AssertionError(kind)


def test_seed_sequence_key_is_its_first_two_state_words_little_endian():
    sequence = np.random.SeedSequence(7)
    k0, k1 = (int(w) for w in sequence.generate_state(2, np.uint32))
    key = resolve_seed(sequence)
    assert key & 0xFFFFFFFF == k0 and key >> 32 == k1
    assert key == int(sequence.generate_state(1, np.uint64)[0])
    assert resolve_seed(sequence) == key  # a SeedSequence is not consumed


@pytest.mark.parametrize("kind", SEED_KINDS)
def test_each_kind_maps_to_its_documented_key(kind):
    seed, key = seed_and_key(kind)
    assert resolve_seed(seed) == key
    assert type(resolve_seed(seed_and_key(kind)[0])) is int


def test_spawned_sequences_get_different_keys():
    children = np.random.SeedSequence(1).spawn(4)
    assert len({resolve_seed(child) for child in children}) == 4


def test_bit_generator_key_ignores_its_state_and_does_not_advance_it():
    bit_generator = np.random.PCG64(3)
    state = bit_generator.state
    first = resolve_seed(bit_generator)
    assert bit_generator.state == state
    bit_generator.random_raw(10)
    assert resolve_seed(bit_generator) == first == resolve_seed(np.random.SeedSequence(3))


def test_generator_draws_one_word_and_advances():
    generator = np.random.default_rng(11)
    twin = np.random.PCG64(11)
    first, second = resolve_seed(generator), resolve_seed(generator)
    assert first != second
    assert [first, second] == [int(w) for w in twin.random_raw(2)]


def test_legacy_seeded_bit_generator_has_no_key():
    legacy = np.random.RandomState(5)._bit_generator  # MT19937 seeded the legacy way
    with pytest.raises(ValueError, match="seed: this MT19937 was not made from a SeedSequence"):
        resolve_seed(legacy)


def test_none_draws_fresh_keys():
    keys = {resolve_seed(None) for _ in range(8)}
    assert len(keys) == 8 and all(0 <= k < 2**64 for k in keys)


# -- every function, kernels and reference -------------------------------------------------

X = np.linspace(-3.0, 3.0, 1003, dtype=np.float32).reshape(17, 59)


def forward_calls(impl):
    """name -> f(seed): each sampling function of `impl` on X, results as a tuple of arrays."""
    return {
        "dropout": lambda seed: (impl.dropout(X, 0.3, seed=seed, stream=4, offset=9),),
        "dropout return_mask": lambda seed: (
            impl.dropout(X, 0.3, seed=seed, stream=4, return_mask=True)[1].bits,),
        "dropout noise_shape": lambda seed: (
            impl.dropout(X, 0.3, seed=seed, noise_shape=(17, 1)),),
        "sample_mask": lambda seed: (impl.sample_mask((17, 59), 0.7, seed=seed, stream=1).bits,),
        "alpha_dropout": lambda seed: (impl.alpha_dropout(X, 0.2, seed=seed, stream=2),),
        "gaussian_dropout": lambda seed: impl.gaussian_dropout(X, 0.4, seed=seed, stream=3,
                                                               return_noise=True),
    }


def backward_calls(impl):
    """name -> f(seed): each backward that regenerates its mask/noise from the seed."""
    return {
        "dropout_backward": lambda seed: impl.dropout_backward(X, rate=0.3, seed=seed, stream=4),
        "alpha_dropout_backward": lambda seed: impl.alpha_dropout_backward(X, rate=0.2, seed=seed),
        "gaussian_dropout_backward": lambda seed: impl.gaussian_dropout_backward(
            X, rate=0.4, seed=seed, stream=3),
    }


IMPLS = {"kernels": fastdrop, "reference": reference}


@pytest.mark.parametrize("impl_name", IMPLS)
@pytest.mark.parametrize("call", list(forward_calls(fastdrop)))
@pytest.mark.parametrize("kind", SEED_KINDS)
def test_forward_with_any_seed_equals_the_int_key(kind, call, impl_name):
    seed, key = seed_and_key(kind)
    result = forward_calls(IMPLS[impl_name])[call](seed)
    expected = forward_calls(reference)[call](key)
    for actual, wanted in zip(result, expected):
        assert_bit_equal(actual, wanted)


@pytest.mark.parametrize("impl_name", IMPLS)
@pytest.mark.parametrize("call", list(backward_calls(fastdrop)))
@pytest.mark.parametrize("kind", [k for k in SEED_KINDS if k != "Generator"])
def test_backward_with_any_fixed_seed_equals_the_int_key(kind, call, impl_name):
    seed, key = seed_and_key(kind)
    assert_bit_equal(backward_calls(IMPLS[impl_name])[call](seed),
                     backward_calls(reference)[call](key))


@pytest.mark.parametrize("impl_name", IMPLS)
@pytest.mark.parametrize("call", list(backward_calls(fastdrop)))
def test_backward_takes_no_generator(call, impl_name):
    with pytest.raises(TypeError, match="not a Generator"):
        backward_calls(IMPLS[impl_name])[call](np.random.default_rng(0))


@pytest.mark.parametrize("impl_name", IMPLS)
def test_forward_and_backward_from_one_bit_generator_agree(impl_name):
    impl = IMPLS[impl_name]
    bit_generator = np.random.PCG64(8)
    y, mask = impl.dropout(X, 0.3, seed=bit_generator, return_mask=True)
    assert mask.seed == resolve_seed(np.random.SeedSequence(8))
    assert_bit_equal(impl.dropout_backward(X, rate=0.3, seed=bit_generator),
                     impl.dropout_backward(X, mask))


@pytest.mark.parametrize("impl_name", IMPLS)
def test_generator_gives_a_new_mask_each_call_and_the_mask_records_the_key(impl_name):
    impl = IMPLS[impl_name]
    generator = np.random.default_rng(5)
    _, first = impl.dropout(X, 0.5, seed=generator, return_mask=True)
    _, second = impl.dropout(X, 0.5, seed=generator, return_mask=True)
    assert first != second
    twin = np.random.PCG64(5)
    assert [first.seed, second.seed] == [int(w) for w in twin.random_raw(2)]


@pytest.mark.parametrize("impl_name", IMPLS)
def test_fixed_seed_repeats_the_mask_until_the_stream_changes(impl_name):
    impl = IMPLS[impl_name]
    for seed in (3, np.random.SeedSequence(3), np.random.PCG64(3)):
        a = impl.sample_mask(1000, seed=seed)
        assert impl.sample_mask(1000, seed=seed) == a
        assert impl.sample_mask(1000, seed=seed, stream=1) != a


# -- rejected seeds ------------------------------------------------------------------------

ALL_CALLS = {**forward_calls(fastdrop), **backward_calls(fastdrop)}


@pytest.mark.parametrize("impl_name", IMPLS)
@pytest.mark.parametrize("call", list(ALL_CALLS))
@pytest.mark.parametrize("seed", [True, np.bool_(False), 1.0, np.float64(2.0), 1.5, "1", b"1",
                                  [1], np.random.RandomState(0)],
                         ids=["True", "np.bool_", "1.0", "np.float64", "1.5", "str", "bytes",
                              "list", "RandomState"])
def test_other_types_are_a_type_error_naming_seed(seed, call, impl_name):
    impl = IMPLS[impl_name]
    calls = {**forward_calls(impl), **backward_calls(impl)}
    with pytest.raises(TypeError, match=r"^seed must be an int in \[0, 2\*\*64\), None, or a "
                                        r"numpy Generator, SeedSequence or BitGenerator, got "):
        calls[call](seed)


@pytest.mark.parametrize("impl_name", IMPLS)
@pytest.mark.parametrize("seed", [-1, 2**64, np.int64(-5)])
def test_out_of_range_ints_are_a_value_error(seed, impl_name):
    with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*64\)"):
        IMPLS[impl_name].dropout(X, 0.5, seed=seed)


# -- the layers and the docs ---------------------------------------------------------------

def test_nn_layers_take_every_kind():
    from fastdrop.nn import Dropout

    for kind in SEED_KINDS:
        seed, key = seed_and_key(kind)
        assert Dropout(0.5, seed=seed).seed == key


def test_torch_modules_and_functions_take_every_kind():
    torch = pytest.importorskip("torch")
    import fastdrop.torch as fdt

    t = torch.from_numpy(X.copy())
    for kind in SEED_KINDS:
        seed, key = seed_and_key(kind)
        assert fdt.Dropout(0.3, seed=seed).seed == key
        seed, key = seed_and_key(kind)
        expected = fastdrop.dropout(X, 0.3, seed=key, stream=2)
        assert_bit_equal(fdt.dropout(t, 0.3, seed=seed, stream=2).numpy(), expected)


@pytest.mark.parametrize("name", ["dropout", "sample_mask", "dropout_backward", "alpha_dropout",
                                  "alpha_dropout_backward", "gaussian_dropout",
                                  "gaussian_dropout_backward"])
def test_seed_docs_give_the_kinds_and_warn_about_a_fixed_seed(name):
    doc = " ".join(getattr(fastdrop, name).__doc__.split())
    for kind in ("SeedSequence", "BitGenerator", "Generator", "None"):
        assert kind in doc
    assert "A fixed seed gives the same mask on every call" in doc
    assert "new stream" in doc
