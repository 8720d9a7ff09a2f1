"""Checkpoints: the format, round trips, corruption, atomic writes, architecture checks,
Ctrl-C, the mask stream a checkpoint records, and a run killed with SIGKILL and resumed
that ends bit-identical to one that never stopped, at every SIMD level (real
subprocesses)."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

import fastdrop
from fastdrop.nn import (SGD, Adam, AlphaDropout, ChannelDropout, Dense, DropConnectDense, Dropout,
                         Dropout2d, DropoutDense, ExponentialLR, FeatureAlphaDropout, GaussianDropout,
                         ReLU, Sequential, Sigmoid, SoftmaxCrossEntropy, SpatialDropout1D, StepLR,
                         Tanh, TimeLockedDropout, build_mlp, fit, load, save)
from fastdrop.nn import checkpoint as checkpoint_module
from conftest import SIMD_LEVELS
from training_state import assert_same_state, history_without_times, same_floats, snapshot

N, FEATURES, CLASSES, BATCH = 96, 12, 4, 16  # 6 minibatches per epoch
REPO = os.path.dirname(os.path.dirname(os.path.abspath(fastdrop.__file__)))
WAIT = 120  # seconds: the bound on every wait for a subprocess


def data(seed=0, n=N):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, n)
    X = rng.standard_normal((CLASSES, FEATURES))[y] + rng.standard_normal((n, FEATURES))
    return X.astype(np.float32), y


def build(width=16, rate=0.3):
    return Sequential([Dropout(0.2, seed=1), Dense(FEATURES, width, seed=2), ReLU(),
                       GaussianDropout(0.1, seed=3), DropoutDense(width, width, rate=rate, seed=4,
                                                                  mode="per_batch"),
                       Tanh(), DropConnectDense(width, CLASSES, rate=0.2, seed=5)])


OPTIMIZERS = {
    "sgd": lambda: SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4, max_norm=3.0,
                       schedule=StepLR(2, gamma=0.5)),
    "adam": lambda: Adam(lr=0.01, weight_decay=1e-4, schedule=ExponentialLR(0.9)),
}


def every_layer_model():
    """One of each layer type a checkpoint holds (not all of them can run on one input)."""
    return Sequential([
        Dropout(keep_prob=0.75, seed=11, inverted=False, store="seed"), Dense(5, 6, seed=1, init="glorot"),
        Sigmoid(), DropoutDense(6, 7, rate=0.25, seed=12, mode="per_batch", dtype=np.float32),
        ReLU(), Tanh(), ChannelDropout(0.1, seed=13, data_format="channels_last", spatial_dims=2),
        Dropout2d(0.2, seed=14), SpatialDropout1D(0.3, seed=15), TimeLockedDropout(0.4, seed=16, time_axis=0),
        GaussianDropout(0.5, seed=17), AlphaDropout(0.05, seed=18), FeatureAlphaDropout(0.06, seed=19),
        DropConnectDense(7, 3, rate=0.5, seed=20, mode="per_sample"),
    ])


# -- format and round trips -----------------------------------------------------------------

def test_every_layer_type_round_trips(tmp_path):
    model = every_layer_model()
    rng = np.random.default_rng(0)
    for i, layer in enumerate(model.layers):
        if hasattr(layer, "step"):
            layer.step = 1000 + i
    for p in model.params():
        p[...] = rng.standard_normal(p.shape)
    save(tmp_path / "m.ckpt", model)
    loaded = load(tmp_path / "m.ckpt")
    assert [type(layer) for layer in loaded.model.layers] == [type(layer) for layer in model.layers]
    for ours, theirs in zip(model.layers, loaded.model.layers):
        assert checkpoint_module.describe_layer(ours, 0) == checkpoint_module.describe_layer(theirs, 0)
        assert repr(ours) == repr(theirs)
    assert_same_state(snapshot(loaded.model), snapshot(model))
    assert loaded.optimizer is None and loaded.training is None and loaded.version == 1


def test_float64_model_and_optimizer_state_round_trip(tmp_path):
    X, y = data()
    for name, make in OPTIMIZERS.items():
        model, optimizer = build_mlp([FEATURES, 9, CLASSES], input_rate=0.2, hidden_rate=0.5,
                                     seed=3, dtype=np.float64), make()
        fit(model, X.astype(np.float64), y, epochs=2, batch_size=BATCH, optimizer=optimizer,
            progress=False)
        save(tmp_path / f"{name}.ckpt", model, optimizer=optimizer)
        loaded = load(tmp_path / f"{name}.ckpt")
        assert type(loaded.optimizer) is type(optimizer)
        assert loaded.optimizer.config() == optimizer.config()
        assert_same_state(snapshot(loaded.model, loaded.optimizer), snapshot(model, optimizer))
        # both go on to the same place
        for m, o in ((model, optimizer), (loaded.model, loaded.optimizer)):
            fit(m, X.astype(np.float64), y, epochs=1, batch_size=BATCH, optimizer=o, progress=False, seed=5)
        assert_same_state(snapshot(loaded.model, loaded.optimizer), snapshot(model, optimizer))


def test_file_is_plain_arrays_and_a_json_manifest(tmp_path):
    X, y = data()
    model, optimizer = build(), OPTIMIZERS["adam"]()
    fit(model, X, y, epochs=1, batch_size=BATCH, optimizer=optimizer, progress=False,
        checkpoint=tmp_path / "run.ckpt")
    with np.load(tmp_path / "run.ckpt", allow_pickle=False) as npz:
        members = {name: npz[name] for name in npz.files}
    manifest = json.loads(bytes(members.pop("manifest")))
    assert manifest["format"] == "fastdrop.nn.checkpoint" and manifest["version"] == 1
    assert set(members) == set(manifest["arrays"])
    assert "layers.1.W" in members and "optimizer.0.m" in members and "optimizer.5.v" in members and "optimizer.6.v" not in members
    for name, array in members.items():
        assert array.dtype.kind == "f" and list(array.shape) == manifest["arrays"][name]["shape"]
    assert [layer["type"] for layer in manifest["model"]["layers"]] == [
        "Dropout", "Dense", "ReLU", "GaussianDropout", "DropoutDense", "Tanh", "DropConnectDense"]
    assert manifest["model"]["layers"][4]["config"] == {
        "in_features": 16, "out_features": 16, "keep_prob": 0.7, "mode": "per_batch", "init": "he",
        "dtype": "float32"}
    assert manifest["model"]["layers"][4]["noise"] == {"seed": 4, "step": 6}
    assert manifest["optimizer"]["type"] == "Adam"
    assert manifest["optimizer"]["config"]["schedule"] == {"type": "ExponentialLR", "gamma": 0.9}
    assert manifest["optimizer"]["state"]["iterations"] == 6
    training = manifest["training"]
    assert (training["epochs"], training["epoch"], training["batch"], training["samples"]) == (1, 1, 0, N)
    assert len(manifest["sha256"]) == 64


# -- damaged, foreign and crafted files -----------------------------------------------------

@pytest.fixture
def saved(tmp_path):
    X, y = data()
    model, optimizer = build(), OPTIMIZERS["sgd"]()
    fit(model, X, y, epochs=1, batch_size=BATCH, optimizer=optimizer, progress=False)
    path = tmp_path / "model.ckpt"
    save(path, model, optimizer=optimizer)
    return path


def _rewrite(path, manifest=None, members=None, digest=True):
    """Write an archive with the given manifest and members, its checksum made valid."""
    with np.load(path, allow_pickle=False) as npz:
        old = {name: npz[name] for name in npz.files}
    stored = json.loads(bytes(old.pop("manifest")))
    document = stored if manifest is None else manifest
    arrays = old if members is None else members
    if digest:
        document["sha256"] = checkpoint_module._digest(document, arrays)
    with open(path, "wb") as f:
        np.savez(f, manifest=np.frombuffer(json.dumps(document).encode(), np.uint8), **arrays)
    return document, arrays


def _manifest(path):
    with np.load(path, allow_pickle=False) as npz:
        return json.loads(bytes(npz["manifest"]))


def test_checkpoints_record_the_mask_stream(saved):
    assert _manifest(saved)["mask_stream"] == fastdrop.MASK_STREAM_VERSION == 2


def _as_written_by_0_2(path):
    """The checkpoint as fastdrop 0.2 wrote it: the same manifest without `mask_stream`."""
    manifest = _manifest(path)
    del manifest["mask_stream"]
    _rewrite(path, manifest)


def test_a_0_2_checkpoint_loads_with_one_warning_about_the_stream(saved):
    expected = load(saved)
    _as_written_by_0_2(saved)
    with pytest.warns(checkpoint_module.MaskStreamWarning, match="mask stream 1") as caught:
        loaded = load(saved)
    assert len(caught) == 1 and "follow mask stream 2" in str(caught[0].message)
    assert caught[0].filename == __file__  # pointed at the caller's line
    assert_same_state(snapshot(loaded.model, loaded.optimizer),
                      snapshot(expected.model, expected.optimizer))


def test_resuming_a_0_2_run_warns_once_and_goes_on(tmp_path):
    X, y = data()
    path = tmp_path / "run.ckpt"
    fit(build(), X, y, epochs=1, batch_size=BATCH, optimizer=OPTIMIZERS["adam"](), seed=3,
        progress=False, checkpoint=path)
    _as_written_by_0_2(path)
    model = build()
    with pytest.warns(checkpoint_module.MaskStreamWarning) as caught:
        history = fit(model, X, y, epochs=2, batch_size=BATCH, optimizer=OPTIMIZERS["adam"](),
                      seed=3, progress=False, resume=path, checkpoint=path)
    assert len(caught) == 1 and history.epoch == [0, 1]
    assert _manifest(path)["mask_stream"] == 2  # the run's new checkpoints are stream 2


@pytest.mark.parametrize("stream", [0, 3, "2", 2.0, None, True])
def test_an_unknown_mask_stream_is_refused(saved, stream):
    manifest = _manifest(saved)
    manifest["mask_stream"] = stream
    _rewrite(saved, manifest)
    with pytest.raises(ValueError, match="mask stream"):
        load(saved)


def test_truncated_file_names_the_path(saved):
    data = saved.read_bytes()
    for cut in (0, 10, len(data) // 3, len(data) - 22, len(data) - 1):
        saved.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=repr(str(saved))):
            load(saved)


def test_flipped_bytes_name_the_path(saved):
    data = bytearray(saved.read_bytes())
    rng = np.random.default_rng(0)
    for position in rng.integers(0, len(data), 40):
        damaged = bytearray(data)
        damaged[position] ^= 0x10
        saved.write_bytes(bytes(damaged))
        try:
            load(saved)
        except ValueError as exc:
            assert repr(str(saved)) in str(exc)
        else:  # only a flip in bytes no reader looks at (zip padding, names' extra fields) may pass
            assert load(saved).model is not None


def test_edited_array_fails_the_checksum(saved):
    manifest = _manifest(saved)
    with np.load(saved, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files if name != "manifest"}
    arrays["layers.1.W"][0, 0] += 1
    _rewrite(saved, manifest, arrays, digest=False)
    with pytest.raises(ValueError, match="checksum"):
        load(saved)


def test_edited_manifest_fails_the_checksum(saved):
    manifest = _manifest(saved)
    manifest["model"]["layers"][0]["config"]["keep_prob"] = 0.5
    _rewrite(saved, manifest, digest=False)
    with pytest.raises(ValueError, match="checksum"):
        load(saved)


@pytest.mark.parametrize("change, match", [
    (lambda m: m.update(version=2), "version 2"),
    (lambda m: m.update(format="something.else"), "format"),
    (lambda m: m["model"]["layers"][2].update(type="os.system"), "describes no model"),
    (lambda m: m["model"]["layers"][1]["config"].update(in_features=-3), "describes no model"),
    (lambda m: m["model"]["layers"].pop(), "does not fit a SGD of a model with 4 parameters"),
    (lambda m: m["optimizer"].update(type="Pickle"), "describes no model"),
    (lambda m: m["model"]["layers"][0].update(noise={"seed": -1, "step": 0}), "seed must be in"),
])
def test_crafted_manifest_with_valid_checksum_is_a_value_error(saved, change, match):
    manifest = _manifest(saved)
    change(manifest)
    _rewrite(saved, manifest)
    with pytest.raises(ValueError, match=match) as info:
        load(saved)
    assert repr(str(saved)) in str(info.value)


def test_object_arrays_are_never_unpickled(tmp_path, saved):
    marker = tmp_path / "code-ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    manifest = _manifest(saved)
    with np.load(saved, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files if name != "manifest"}
    evil = np.empty(1, dtype=object)
    evil[0] = Payload()
    arrays["layers.1.W"] = evil
    manifest["arrays"]["layers.1.W"] = {"shape": [1], "dtype": "|O"}
    with open(saved, "wb") as f:
        np.savez(f, manifest=np.frombuffer(json.dumps(manifest).encode(), np.uint8), **arrays)
    with pytest.raises(ValueError, match=repr(str(saved))):
        load(saved)
    assert not marker.exists()


def test_other_files_are_value_errors(tmp_path):
    for name, content in (("empty", b""), ("text", b"hello"), ("zip", None), ("npy", None)):
        path = tmp_path / name
        if name == "zip":
            with zipfile.ZipFile(path, "w") as archive:
                archive.writestr("readme.txt", "not a checkpoint")
        elif name == "npy":
            with open(path, "wb") as f:
                np.save(f, np.zeros(3))
        else:
            path.write_bytes(content)
        with pytest.raises(ValueError, match=repr(str(path))):
            load(path)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "absent")


def test_unsupported_layers_and_optimizers_are_type_errors(tmp_path):
    class MyDense(Dense):
        pass

    with pytest.raises(TypeError, match=r"layers\[1\] is a MyDense"):
        save(tmp_path / "x", Sequential([ReLU(), MyDense(2, 2, seed=0)]))
    with pytest.raises(TypeError, match="optimizer"):
        save(tmp_path / "x", build(), optimizer=object())
    assert not os.listdir(tmp_path)


# -- atomic writes ---------------------------------------------------------------------------

def test_failed_write_keeps_the_old_checkpoint(saved, monkeypatch):
    before = saved.read_bytes()

    def torn_savez(f, **members):
        f.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.np, "savez", torn_savez)
    with pytest.raises(OSError, match="disk full"):
        save(saved, build())
    assert saved.read_bytes() == before
    assert os.listdir(saved.parent) == [saved.name]


def test_write_is_fsynced_then_renamed(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(checkpoint_module.os, "fsync",
                        lambda fd: (calls.append(("fsync", os.path.isdir(f"/proc/self/fd/{fd}"))),
                                    real_fsync(fd))[1])
    monkeypatch.setattr(checkpoint_module.os, "replace",
                        lambda a, b: (calls.append(("replace", os.path.dirname(a) == os.path.dirname(b))),
                                      real_replace(a, b))[1])
    save(tmp_path / "m.ckpt", build())
    assert calls == [("fsync", False), ("replace", True), ("fsync", True)]


WRITER = """
import sys, numpy as np
sys.path.insert(0, {repo!r})
from fastdrop.nn import Dense, Sequential, save
model = Sequential([Dense(300, 300, seed=0), Dense(300, 10, seed=1)])
k = 0
while True:
    for p in model.params():
        p.fill(k)
    save({path!r}, model)
    if k == 1:
        open({ready!r}, "w").close()
    k += 1
"""


def test_kill_during_writes_leaves_a_whole_checkpoint(tmp_path):
    path, ready = tmp_path / "m.ckpt", tmp_path / "ready"
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(repo=REPO, path=str(path), ready=str(ready)))
    rng = np.random.default_rng(1)
    for attempt in range(4):
        ready.unlink(missing_ok=True)
        child = subprocess.Popen([sys.executable, str(script)])
        try:
            _wait_for(ready, child)
            time.sleep(float(rng.uniform(0.0, 0.2)))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=WAIT)
        assert child.returncode == -signal.SIGKILL
        params = load(path).model.params()
        k = params[0].flat[0]
        assert k >= 1 and all((p == k).all() for p in params)
        leftovers = list(tmp_path.glob(".m.ckpt.*.tmp"))  # at most the killed write's own
        assert len(leftovers) <= 1
        for leftover in leftovers:
            leftover.unlink()


def _wait_for(marker, child, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if child.poll() is not None:
            raise AssertionError(f"the child exited with {child.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise AssertionError(f"the child was not ready after {timeout} s")
        time.sleep(0.01)


# -- resume: checks ----------------------------------------------------------------------------

@pytest.fixture
def run_checkpoint(tmp_path):
    X, y = data()
    model, optimizer = build(), OPTIMIZERS["sgd"]()
    fit(model, X, y, epochs=2, batch_size=BATCH, optimizer=optimizer, progress=False,
        checkpoint=tmp_path / "run.ckpt")
    return tmp_path / "run.ckpt"


@pytest.mark.parametrize("make_model, make_optimizer, match", [
    (lambda: build(width=17), OPTIMIZERS["sgd"], r"layers\[1\] does not match.*out_features"),
    (lambda: build(rate=0.5), OPTIMIZERS["sgd"], r"layers\[4\] does not match.*keep_prob"),
    (lambda: Sequential(build().layers[1:]), OPTIMIZERS["sgd"], "7 layers, this one 6"),
    (lambda: Sequential([Dropout(0.2, seed=1)] + build().layers[1:2] + [Sigmoid()] + build().layers[3:]),
     OPTIMIZERS["sgd"], r"layers\[2\] does not match.*type"),
    (build, OPTIMIZERS["adam"], "optimizer is a SGD, this one a Adam"),
    (build, lambda: SGD(lr=0.05, momentum=0.8, nesterov=True, weight_decay=1e-4, max_norm=3.0,
                        schedule=StepLR(2, gamma=0.5)), "momentum is 0.9 there, 0.8 here"),
    (build, lambda: SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4, max_norm=3.0),
     "schedule"),
])
def test_resume_refuses_another_architecture_and_changes_nothing(run_checkpoint, make_model,
                                                                 make_optimizer, match):
    X, y = data()
    model, optimizer = make_model(), make_optimizer()
    before = snapshot(model, optimizer)
    with pytest.raises(ValueError, match=match):
        fit(model, X, y, epochs=4, batch_size=BATCH, optimizer=optimizer, progress=False,
            resume=run_checkpoint)
    assert_same_state(snapshot(model, optimizer), before)


def test_resume_refuses_other_batches_or_data_and_files_without_a_position(run_checkpoint, tmp_path):
    X, y = data()
    with pytest.raises(ValueError, match="batch_size=16"):
        fit(build(), X, y, epochs=4, batch_size=32, optimizer=OPTIMIZERS["sgd"](), progress=False,
            resume=run_checkpoint)
    with pytest.raises(ValueError, match="samples=96"):
        fit(build(), X[:50], y[:50], epochs=4, batch_size=BATCH, optimizer=OPTIMIZERS["sgd"](),
            progress=False, resume=run_checkpoint)
    with pytest.raises(ValueError, match="epoch 2, beyond epochs=1"):
        fit(build(), X, y, epochs=1, batch_size=BATCH, optimizer=OPTIMIZERS["sgd"](), progress=False,
            resume=run_checkpoint)
    save(tmp_path / "plain.ckpt", build(), optimizer=OPTIMIZERS["sgd"]())
    with pytest.raises(ValueError, match="no training position"):
        fit(build(), X, y, epochs=4, batch_size=BATCH, optimizer=OPTIMIZERS["sgd"](), progress=False,
            resume=tmp_path / "plain.ckpt")
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        fit(build(), X, y, epochs=1, progress=False, checkpoint=tmp_path / "no" / "such" / "dir.ckpt")


def test_resume_of_a_finished_run_returns_its_history(run_checkpoint):
    X, y = data()
    model = build()
    history = fit(model, X, y, epochs=2, batch_size=BATCH, optimizer=OPTIMIZERS["sgd"](),
                  progress=False, resume=run_checkpoint)
    assert history.epoch == [0, 1] and history.steps == 12
    assert_same_state(snapshot(model), snapshot(load(run_checkpoint).model))


def test_custom_schedule_is_kept_by_kind(tmp_path):
    X, y = data()
    schedule = lambda epoch: 0.5 ** epoch  # noqa: E731
    model, optimizer = build(), SGD(lr=0.05, momentum=0.9, schedule=schedule)
    fit(model, X, y, epochs=1, batch_size=BATCH, optimizer=optimizer, progress=False,
        checkpoint=tmp_path / "c.ckpt")
    loaded = load(tmp_path / "c.ckpt")
    with pytest.raises(ValueError, match="custom callable"):
        loaded.optimizer.begin_epoch(1)
    history = fit(build(), X, y, epochs=2, batch_size=BATCH, progress=False, resume=tmp_path / "c.ckpt",
                  optimizer=SGD(lr=0.05, momentum=0.9, schedule=lambda epoch: 0.5 ** epoch))
    assert history.lr == [0.05, 0.025]


# -- resume: bit for bit -------------------------------------------------------------------------

def _uninterrupted(make_optimizer, epochs=4, **kwargs):
    X, y = data()
    model, optimizer = build(), make_optimizer()
    history = fit(model, X, y, epochs=epochs, batch_size=BATCH, optimizer=optimizer, progress=False,
                  X_val=X[:30], y_val=y[:30], **kwargs)
    return snapshot(model, optimizer), history


def _assert_same_run(state, history, expected_state, expected_history):
    assert_same_state(state, expected_state)
    ours, theirs = history_without_times(history), history_without_times(expected_history)
    assert sorted(ours) == sorted(theirs)
    for key in ours:
        if isinstance(ours[key], list):
            assert same_floats(ours[key], theirs[key]), key
        else:
            assert ours[key] == theirs[key], key


class InterruptingLoss(SoftmaxCrossEntropy):
    """Interrupts on its `at`-th call: raises KeyboardInterrupt, or sends this process SIGINT."""

    def __init__(self, at, how):
        super().__init__()
        self.calls, self.at, self.how = 0, at, how

    def forward(self, logits, y):
        self.calls += 1
        if self.calls == self.at:
            if self.how == "raise":
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGINT)
        return super().forward(logits, y)


@pytest.mark.parametrize("optimizer_name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("how, at, position", [("raise", 10, (1, 3)), ("sigint", 10, (1, 4)),
                                               ("sigint", 12, (2, 0))])
def test_ctrl_c_writes_the_checkpoint_and_resume_is_bit_identical(tmp_path, optimizer_name, how, at,
                                                                   position):
    make = OPTIMIZERS[optimizer_name]
    expected_state, expected_history = _uninterrupted(make)
    X, y = data()
    path = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):
        fit(build(), X, y, epochs=4, batch_size=BATCH, optimizer=make(), progress=False,
            X_val=X[:30], y_val=y[:30], checkpoint=path, loss=InterruptingLoss(at, how))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    training = load(path).training
    assert (training["epoch"], training["batch"]) == position
    model, optimizer = build(), make()
    history = fit(model, X, y, epochs=4, batch_size=BATCH, optimizer=optimizer, progress=False,
                  X_val=X[:30], y_val=y[:30], checkpoint=path, resume=path)
    _assert_same_run(snapshot(model, optimizer), history, expected_state, expected_history)


CHILD = """
import json, os, sys, time
import numpy as np
sys.path.insert(0, {repo!r})
from fastdrop.datasets import load_mnist5k
from fastdrop.nn import (SGD, Adam, Dense, Dropout, DropoutDense, ExponentialLR, GaussianDropout, ReLU,
                         Sequential, SoftmaxCrossEntropy, StepLR, fit, save)

mode, optimizer_name, checkpoint, kill_epoch, out, ready = sys.argv[1:7]
X, y, _, _ = load_mnist5k()
X, y = X[:320], y[:320]
STEPS_PER_EPOCH = 10

class StopAfterCheckpoint(SoftmaxCrossEntropy):
    # the first minibatch of epoch k comes after epoch k-1's checkpoint: say so, then wait
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, logits, labels):
        if mode == "kill" and self.calls == int(kill_epoch) * STEPS_PER_EPOCH:
            open(ready, "w").close()
            time.sleep(600)
        self.calls += 1
        return super().forward(logits, labels)

model = Sequential([Dropout(0.2, seed=1), Dense(784, 32, seed=2), ReLU(),
                    DropoutDense(32, 24, rate=0.3, seed=3), ReLU(), GaussianDropout(0.2, seed=4),
                    DropoutDense(24, 10, rate=0.1, seed=5, mode="per_batch")])
if optimizer_name == "sgd":
    optimizer = SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4, max_norm=3.0,
                    schedule=StepLR(2, gamma=0.5))
else:
    optimizer = Adam(lr=2e-3, weight_decay=1e-4, schedule=ExponentialLR(0.8))
history = fit(model, X, y, epochs=4, batch_size=32, optimizer=optimizer, seed=7, progress=False,
              X_val=X[:64], y_val=y[:64], checkpoint=None if mode == "full" else checkpoint,
              resume=checkpoint if mode == "resume" else None, loss=StopAfterCheckpoint())
save(out, model, optimizer=optimizer)
state = history.state()
with open(out + ".json", "w") as f:
    json.dump({{k: v for k, v in state.items() if k not in ("time", "step_seconds", "dropout_seconds")}}, f)
"""


def _run_child(script, *args, env=None):
    child = subprocess.run([sys.executable, str(script), *map(str, args)], timeout=WAIT,
                           capture_output=True, text=True, env=env)
    assert child.returncode == 0, child.stderr


# every SIMD level this CPU has, SGD; Adam at the best level
SIGKILL_CASES = [("sgd", 1, level) for level in SIMD_LEVELS] + [("adam", 3, SIMD_LEVELS[-1])]


@pytest.mark.parametrize("optimizer_name, kill_epoch, level", SIGKILL_CASES)
def test_sigkill_after_a_checkpoint_then_resume_is_bit_identical(tmp_path, optimizer_name,
                                                                  kill_epoch, level):
    script = tmp_path / "train.py"
    script.write_text(CHILD.format(repo=REPO))
    ckpt, ready = tmp_path / "run.ckpt", tmp_path / "ready"
    env = {**os.environ, "FASTDROP_SIMD": level}
    # the uninterrupted run goes alongside
    full_run = subprocess.Popen([sys.executable, str(script), "full", optimizer_name, str(ckpt),
                                 str(kill_epoch), str(tmp_path / "full"), str(ready)],
                                stderr=subprocess.PIPE, text=True, env=env)
    killed = subprocess.Popen([sys.executable, str(script), "kill", optimizer_name, str(ckpt),
                               str(kill_epoch), str(tmp_path / "never"), str(ready)],
                              stderr=subprocess.DEVNULL, env=env)
    try:
        _wait_for(ready, killed)
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=WAIT)
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "never").exists()
    training = load(ckpt).training
    assert (training["epoch"], training["batch"]) == (kill_epoch, 0)

    _run_child(script, "resume", optimizer_name, ckpt, kill_epoch, tmp_path / "resumed", ready,
               env=env)
    try:
        _, errors = full_run.communicate(timeout=WAIT)
    finally:
        full_run.kill()
    assert full_run.returncode == 0, errors
    resumed, full = load(tmp_path / "resumed"), load(tmp_path / "full")
    assert_same_state(snapshot(resumed.model, resumed.optimizer), snapshot(full.model, full.optimizer))
    assert [layer.step for layer in resumed.model.layers if hasattr(layer, "step")] == [40] * 4
    history = json.loads((tmp_path / "resumed.json").read_text())
    expected = json.loads((tmp_path / "full.json").read_text())
    assert history.keys() == expected.keys() and history["epoch"] == [0, 1, 2, 3]
    for key in history:
        if isinstance(history[key], list):
            assert same_floats(history[key], expected[key]), key
        else:
            assert history[key] == expected[key], key
    # the resumed run's own checkpoint also ends where the full run did
    assert_same_state(snapshot(load(ckpt).model), snapshot(full.model))
