"""Checkpoints: `save` a model (and its optimizer) to one file, `load` it back.

The format ("fastdrop.nn.checkpoint", version 1) is an uncompressed ``.npz`` archive whose
members are plain numeric arrays plus one JSON manifest, read with ``allow_pickle=False``
and against a fixed table of layer and optimizer types, so a crafted file can never run
code.  Members:

- ``manifest``: the UTF-8 JSON manifest as a uint8 array;
- ``layers.<i>.<name>``: parameter ``name`` (``W``, ``b``) of ``model.layers[i]``;
- ``optimizer.<j>.<slot>``: the optimizer's state for parameter ``j`` (in
  ``model.param_groups()`` order): ``velocity`` (SGD with momentum), ``m`` and ``v`` (Adam).

The manifest is an object with the keys

- ``format`` (``"fastdrop.nn.checkpoint"``) and ``version`` (``1``);
- ``mask_stream``: the mask stream the noise layers draw (``fastdrop.MASK_STREAM_VERSION``,
  DESIGN.md §2.1).  Checkpoints of fastdrop 0.2 have no such key: they drew mask stream 1,
  and load with one `MaskStreamWarning`, since the masks drawn after resuming follow the
  current stream (the weights, optimizer state and steps load exactly as saved);
- ``model``: ``{"type": "Sequential", "thin_per_batch": bool, "layers": [...]}``, each layer
  ``{"type": class name, "config": constructor arguments, "parameters": [names]}`` plus,
  for layers that draw noise, ``"noise": {"seed": int, "step": int}`` (the seed and the
  stream of the next training forward).  ``config`` holds every constructor argument but
  ``rate`` (``keep_prob`` says it exactly) and ``seed`` (which is state, under ``noise``);
- ``arrays``: ``{member name: {"shape": [...], "dtype": numpy dtype string}}`` for every
  array member;
- ``optimizer``: null, or ``{"type": "SGD" | "Adam", "config": constructor arguments (the
  schedule as ``{"type": "StepLR", ...}``, ``{"type": "ExponentialLR", ...}`` or
  ``{"type": "custom", "repr": ...}``), "state": {"iterations": int, "lr": float}}``;
- ``training``: null for `save`; for the checkpoints of `fastdrop.nn.fit` the position of
  the run: ``epochs`` (the total asked for), ``epoch`` and ``batch`` (the next minibatch to
  train), ``batch_size``, ``shuffle``, ``samples``, ``rng`` (the shuffling generator's
  ``bit_generator.state`` at the start of ``epoch``), ``partial`` (the running sums of
  ``epoch`` so far) and ``history`` (the `History` so far);
- ``sha256``: the SHA-256 of the manifest without this key (JSON with sorted keys and no
  spaces) followed by each array's bytes in C order, arrays in sorted name order.

Writes are atomic: the archive goes to a temporary file in the target's folder, which is
flushed and fsynced and then renamed over the target (the folder is fsynced too), so a
process killed at any moment leaves the old checkpoint or the new one (and at most a
stray ``.<name>.*.tmp`` beside it, which nothing reads).  Reading a file
that is not such a checkpoint, truncated, corrupt or from a newer version is a
ValueError naming the path.

``load(path)`` returns a `Checkpoint`: ``model`` (a new `Sequential` with the saved
weights and noise states), ``optimizer`` (a new optimizer holding the saved state, or
None), ``training`` (the dict above, or None) and ``version``.  To go on training, pass
the same path as ``fit(..., resume=path)``, which restores into the model and optimizer
it is given after checking that they match the checkpoint.
"""
import hashlib
import inspect
import json
import os
import tempfile
import zipfile
import zlib

import warnings

import numpy as np

from .._kernels import MASK_STREAM_VERSION
from ._checks import is_flag, is_int, is_real
from .activations import ReLU, Sigmoid, Tanh
from .base import NoiseSource
from .dense import Dense
from .dropout import Dropout, DropoutDense
from .model import Sequential
from .optim import SGD, Adam, schedule_from_config
from .variants import (AlphaDropout, ChannelDropout, DropConnectDense, Dropout1d, Dropout2d,
                       Dropout3d, FeatureAlphaDropout, GaussianDropout, SpatialDropout1D,
                       SpatialDropout2D, SpatialDropout3D, TimeLockedDropout)

FORMAT = "fastdrop.nn.checkpoint"
VERSION = 1
#: The mask stream of a checkpoint without the ``mask_stream`` key (fastdrop 0.2).
LEGACY_MASK_STREAM = 1


class MaskStreamWarning(UserWarning):
    """A checkpoint was written under another mask stream than the one this fastdrop draws:
    it loads exactly, but the masks drawn after resuming follow the current stream."""

#: The layer types a checkpoint can hold, by the name the manifest uses.
LAYER_TYPES = {cls.__name__: cls for cls in (
    Dense, Dropout, DropoutDense, ReLU, Tanh, Sigmoid, ChannelDropout, Dropout1d, Dropout2d,
    Dropout3d, SpatialDropout1D, SpatialDropout2D, SpatialDropout3D, TimeLockedDropout,
    GaussianDropout, AlphaDropout, FeatureAlphaDropout, DropConnectDense)}
#: The optimizer types a checkpoint can hold.
OPTIMIZER_TYPES = {"SGD": SGD, "Adam": Adam}

_MANIFEST = "manifest"
# Constructor arguments that are not configuration: rate is said by keep_prob, seed is state.
_NOT_CONFIG = ("rate", "seed")
_READ_ERRORS = (ValueError, KeyError, TypeError, OSError, EOFError, zlib.error, zipfile.BadZipFile)


class Checkpoint:
    """What `load` returns: ``model``, ``optimizer`` (or None), ``training`` (the run's
    position for `fit`, or None), ``version`` and ``path``."""

    __slots__ = ("path", "model", "optimizer", "training", "version")

    def __init__(self, path, model, optimizer, training, version):
        self.path = path
        self.model = model
        self.optimizer = optimizer
        self.training = training
        self.version = version

    def __repr__(self):
        where = "" if self.training is None else \
            f", epoch {self.training['epoch']} of {self.training['epochs']}"
        return f"Checkpoint({self.path!r}, {len(self.model.layers)} layers, optimizer={self.optimizer!r}{where})"


def save(path, model, *, optimizer=None):
    """Write `model` (a `Sequential` of fastdrop.nn layers) and `optimizer` to `path`, atomically."""
    write_checkpoint(path, model, optimizer)


def load(path):
    """Read the checkpoint at `path` into new objects; returns a `Checkpoint`."""
    path = os.fspath(path)
    manifest, arrays = read_checkpoint(path)
    try:
        spec = manifest["model"]
        layers = [_build_layer(entry) for entry in spec["layers"]]
        model = Sequential(layers, thin_per_batch=spec["thin_per_batch"])
        optimizer = None
        if manifest["optimizer"] is not None:
            saved = manifest["optimizer"]
            config = dict(saved["config"])
            schedule = schedule_from_config(config.pop("schedule"))
            optimizer = OPTIMIZER_TYPES[saved["type"]](**config, schedule=schedule)
    except _READ_ERRORS as exc:
        raise ValueError(f"{path!r}: the checkpoint describes no model this version can build "
                         f"({type(exc).__name__}: {exc})") from None
    restore(path, manifest, arrays, model, optimizer)
    return Checkpoint(path, model, optimizer, manifest["training"], manifest["version"])


# -- writing --------------------------------------------------------------------------------

def write_checkpoint(path, model, optimizer=None, training=None):
    """Atomically write the checkpoint of `model`, `optimizer` and the `training` position."""
    path = os.fspath(path)
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a fastdrop.nn.Sequential, got {type(model).__name__}")
    arrays = {}
    layers = []
    for i, layer in enumerate(model.layers):
        layers.append(describe_layer(layer, i))
        for p in layer.parameters():
            arrays[f"layers.{i}.{p.name}"] = p.value
    optimizer_entry = None
    if optimizer is not None:
        optimizer_entry = describe_optimizer(optimizer)
        scalars, state = optimizer.export_state()
        optimizer_entry["state"] = scalars
        arrays.update({f"optimizer.{key}": value for key, value in state.items()})
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "mask_stream": MASK_STREAM_VERSION,
        "model": {"type": "Sequential", "thin_per_batch": bool(model.thin_per_batch),
                  "layers": layers},
        "arrays": {name: {"shape": list(a.shape), "dtype": a.dtype.str} for name, a in arrays.items()},
        "optimizer": optimizer_entry,
        "training": training,
    }
    manifest["sha256"] = _digest(manifest, arrays)
    members = {_MANIFEST: np.frombuffer(_canonical(manifest), dtype=np.uint8)}
    members.update(arrays)
    _atomic_write(path, members)


def describe_layer(layer, index):
    """The manifest entry of ``model.layers[index]``: type, config, parameter names, noise."""
    cls = type(layer)
    if LAYER_TYPES.get(cls.__name__) is not cls:
        raise TypeError(f"layers[{index}] is a {cls.__name__}, which a checkpoint cannot hold; "
                        f"it holds the layers {sorted(LAYER_TYPES)}")
    config = {name: _json_value(getattr(layer, name), f"layers[{index}].{name}")
              for name in _config_names(cls)}
    entry = {"type": cls.__name__, "config": config,
             "parameters": [p.name for p in layer.parameters()]}
    if isinstance(layer, NoiseSource):
        entry["noise"] = layer.noise_state()
    return entry


def describe_optimizer(optimizer):
    """The manifest entry of an optimizer, without its state: type and config."""
    cls = type(optimizer)
    if OPTIMIZER_TYPES.get(cls.__name__) is not cls:
        raise TypeError(f"optimizer is a {cls.__name__}, which a checkpoint cannot hold; "
                        f"it holds {sorted(OPTIMIZER_TYPES)}")
    return {"type": cls.__name__, "config": optimizer.config()}


def _config_names(cls):
    parameters = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in parameters
            if p.name != "self" and p.name not in _NOT_CONFIG
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _json_value(value, name):
    if isinstance(value, np.dtype):
        return value.name
    if value is None or isinstance(value, str):
        return value
    if is_flag(value):
        return bool(value)
    if is_int(value):
        return int(value)
    if is_real(value):
        return float(value)
    raise TypeError(f"{name} is a {type(value).__name__}, which a checkpoint cannot hold")


def _canonical(document):
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _digest(manifest, arrays):
    digest = hashlib.sha256(_canonical({k: v for k, v in manifest.items() if k != "sha256"}))
    for name in sorted(arrays):
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()


def _atomic_write(path, members):
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".",
                                     suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **members)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    if os.name == "posix":  # make the rename itself durable
        directory = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


# -- reading --------------------------------------------------------------------------------

def read_checkpoint(path):
    """``(manifest, arrays)`` of the checkpoint at `path`, its format, version and checksum
    verified; anything else is a ValueError naming the path (a missing file stays
    FileNotFoundError)."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = set(npz.files)
            manifest = json.loads(bytes(npz[_MANIFEST]).decode("utf-8"))
            _check_header(manifest)
            listed = manifest["arrays"]
            if names != set(listed) | {_MANIFEST}:
                raise ValueError(f"the archive holds {sorted(names - {_MANIFEST})}, the manifest "
                                 f"lists {sorted(listed)}")
            arrays = {name: npz[name] for name in listed}
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except AttributeError:  # np.load gave a single array, not an archive
        raise ValueError(f"{path!r} is not a fastdrop checkpoint (not an .npz archive)") from None
    except _READ_ERRORS as exc:
        raise ValueError(f"{path!r} is not a readable fastdrop checkpoint "
                         f"({type(exc).__name__}: {exc})") from None
    for name, array in arrays.items():
        spec = listed[name]
        if array.dtype.str != spec["dtype"] or list(array.shape) != spec["shape"] \
                or array.dtype.kind != "f":
            raise ValueError(f"{path!r}: array {name!r} is {array.dtype.str} {array.shape}, the "
                             f"manifest says {spec['dtype']} {tuple(spec['shape'])}")
    if manifest.get("sha256") != _digest(manifest, arrays):
        raise ValueError(f"{path!r}: checksum mismatch, the checkpoint is corrupt")
    stream = manifest.get("mask_stream", LEGACY_MASK_STREAM)
    if stream != MASK_STREAM_VERSION:
        warnings.warn(f"{path!r} was written under mask stream {stream} (fastdrop 0.2); it loads "
                      f"as saved, but the masks drawn after resuming follow mask stream "
                      f"{MASK_STREAM_VERSION}, so they differ from those the original run "
                      f"would have drawn", MaskStreamWarning, stacklevel=3)
    return manifest, arrays


def _check_header(manifest):
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"the manifest does not name the format {FORMAT!r}")
    version = manifest.get("version")
    if version != VERSION:
        raise ValueError(f"format version {version!r}; this fastdrop reads version {VERSION}")
    stream = manifest.get("mask_stream", LEGACY_MASK_STREAM)
    if type(stream) is not int or not LEGACY_MASK_STREAM <= stream <= MASK_STREAM_VERSION:
        raise ValueError(f"mask stream {stream!r}; this fastdrop knows mask streams "
                         f"{LEGACY_MASK_STREAM} to {MASK_STREAM_VERSION}")
    for key in ("model", "arrays", "optimizer", "training", "sha256"):
        if key not in manifest:
            raise ValueError(f"the manifest lacks {key!r}")
    if not isinstance(manifest["arrays"], dict):
        raise ValueError("the manifest's 'arrays' must be an object")


def _build_layer(entry):
    cls = LAYER_TYPES[entry["type"]]
    config = dict(entry["config"])
    if "seed" in inspect.signature(cls.__init__).parameters:
        # the noise seed, or any fixed one for the initial weights the saved ones replace
        config["seed"] = entry.get("noise", {}).get("seed", 0)
    return cls(**config)


# -- restoring ------------------------------------------------------------------------------

def restore(path, manifest, arrays, model, optimizer=None):
    """Put the checkpoint's weights, noise states and optimizer state into `model` and
    `optimizer`, after checking that they match it (ValueError naming `path` if not).
    Everything is checked before anything changes."""
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a fastdrop.nn.Sequential, got {type(model).__name__}")
    ours = [describe_layer(layer, i) for i, layer in enumerate(model.layers)]
    if optimizer is not None:
        describe_optimizer(optimizer)  # a type no checkpoint holds is the caller's TypeError
    try:
        copies, noise = _match_model(path, manifest["model"]["layers"], arrays, model, ours)
        if optimizer is not None:
            _import_optimizer(path, manifest, arrays, model, optimizer)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path!r}: malformed checkpoint ({type(exc).__name__}: {exc})") from None
    for target, source in copies:
        np.copyto(target, source)
    for layer, state in noise:
        layer.set_noise_state(state["seed"], state["step"])


def _match_model(path, saved_layers, arrays, model, ours):
    """The (parameter, saved array) pairs and (layer, noise state) pairs to restore, after
    checking that `model` has the checkpoint's architecture."""
    if len(saved_layers) != len(model.layers):
        raise ValueError(f"{path!r}: the checkpoint's model has {len(saved_layers)} layers, "
                         f"this one {len(model.layers)}")
    copies = []
    noise = []
    for i, (layer, saved, mine) in enumerate(zip(model.layers, saved_layers, ours)):
        for key in ("type", "config", "parameters"):
            if mine[key] != saved.get(key):
                raise ValueError(f"{path!r}: layers[{i}] does not match the checkpoint's "
                                 f"architecture: {key} is {saved.get(key)!r} there, "
                                 f"{mine[key]!r} here")
        for p in layer.parameters():
            array = arrays[f"layers.{i}.{p.name}"]
            if array.shape != p.value.shape or array.dtype != p.value.dtype:
                raise ValueError(f"{path!r}: layers[{i}].{p.name} is {array.dtype} {array.shape} "
                                 f"there, {p.value.dtype} {p.value.shape} here")
            copies.append((p.value, array))
        if isinstance(layer, NoiseSource):
            state = saved["noise"]
            _check_noise_state(path, layer, state)
            noise.append((layer, state))
    return copies, noise


def _check_noise_state(path, layer, state):
    probe = NoiseSource()  # a scratch object takes the state first: nothing changes on error
    try:
        probe.set_noise_state(state.get("seed"), state.get("step"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path!r}: bad noise state for {type(layer).__name__}: {exc}") from None


def _import_optimizer(path, manifest, arrays, model, optimizer):
    saved = manifest["optimizer"]
    if saved is None:
        raise ValueError(f"{path!r} holds no optimizer state")
    ours = describe_optimizer(optimizer)
    if ours["type"] != saved["type"]:
        raise ValueError(f"{path!r}: the checkpoint's optimizer is a {saved['type']}, this one "
                         f"a {ours['type']}")
    theirs = dict(saved["config"])
    mine = dict(ours["config"])
    for config in (theirs, mine):  # a custom schedule is compared by kind only
        if isinstance(config.get("schedule"), dict) and config["schedule"]["type"] == "custom":
            config["schedule"] = "custom"
    for key in sorted(set(theirs) | set(mine)):
        if theirs.get(key) != mine.get(key):
            raise ValueError(f"{path!r}: the optimizer does not match the checkpoint's: {key} is "
                             f"{theirs.get(key)!r} there, {mine.get(key)!r} here")
    state = {name[len("optimizer."):]: array for name, array in arrays.items()
             if name.startswith("optimizer.")}
    try:
        optimizer.import_state(model, saved["state"], state)
    except ValueError as exc:
        raise ValueError(f"{path!r}: {exc}") from None

