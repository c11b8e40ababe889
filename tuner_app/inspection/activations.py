"""Layer activations of a set of stimuli, saved for other tools (GLM, encoding models, RSA): FILE.npz and the
same variables in FILE.mat. docs/activations.md documents the format; FORMAT_VERSION changes with it."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tuner_app import outputs
from tuner_app.errors import TunerAppError, storage_errors
from tuner_app.files import atomic_path

if TYPE_CHECKING:  # source and probe import TensorFlow: loaded where a model runs
    from tuner_app.inspection.source import Inspected

log = logging.getLogger(__name__)

POOLS = ("time", "none")
FORMAT = "tuner-app-activations"
FORMAT_VERSION = 1
RESERVED = ("stimuli", "layers", "metadata")
RDM_PREFIX = "rdm_"
# MATLAB identifiers are at most 63 characters (namelengthmax); rdm_<layer> must be one too.
LAYER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,58}")
MAP_AXES = {1: ("unit",), 2: ("time", "channel"), 3: ("frequency", "time", "channel")}
CHUNK = 128  # stimuli per pass: pooling as it goes keeps memory at one chunk's unpooled maps
MAT_LIMIT = 2**31 - 1  # bytes per variable in a MATLAB v5 file


@dataclasses.dataclass(frozen=True)
class ActivationFile:
    """An activations file read back: arrays and rdms ({layer: [n, n]}) by layer name, in `layers` order."""

    stimuli: tuple[str, ...]
    layers: tuple[str, ...]
    arrays: dict[str, np.ndarray]
    rdms: dict[str, np.ndarray]
    metadata: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class SavedRdms:
    """The RDMs save writes: `matrices` ({layer: [n, n]}) as rdm_<layer> arrays, `metric` and what it measures
    (`dissimilarity`) in metadata, and `write_file`, which writes FILE.rdms.hdf5 at the path it is given."""

    matrices: Mapping[str, np.ndarray]
    metric: str
    dissimilarity: str | None
    write_file: Callable[[Path], Path]


def check_layer_names(names: Sequence[str]) -> None:
    """TunerAppError unless every name is unique, a MATLAB identifier, and no reserved key of the file."""
    for name in names:
        if not LAYER_NAME.fullmatch(name) or name in RESERVED or name.startswith(RDM_PREFIX):
            raise TunerAppError(f"--layers: {name!r} cannot name a variable of the activations file (a letter "
                                f"then letters, digits or _, at most 59; not {', '.join(RESERVED)} or rdm_*)")
    if len(set(names)) < len(names):
        raise TunerAppError(f"--layers: {min(n for n in names if list(names).count(n) > 1)} is named twice")


def _check_pool(pool: str) -> None:
    if pool not in POOLS:
        raise TunerAppError(f"--pool: {pool!r} is not one of {', '.join(POOLS)}")


def layer_axes(shape: Sequence[int], pool: str) -> tuple[str, ...]:
    """Names of a layer's saved axes, from 'stimulus' on, for an output `shape` (no batch dimension).
    Pooled over time, a map's remaining axes are flattened into one features axis (C order, first axis
    major): the names then describe that flattened layout, e.g. ('stimulus', 'frequency', 'channel')."""
    _check_pool(pool)
    if len(shape) not in MAP_AXES:
        raise TunerAppError(f"a layer output of shape {tuple(shape)} is not a vector, 1D or 2D map")
    return ("stimulus", *(axis for axis in MAP_AXES[len(shape)] if pool == "none" or axis != "time"))


def pooled(array: np.ndarray, pool: str) -> np.ndarray:
    """[n, *shape] as saved: unchanged for pool "none"; for "time", maps averaged over their time axis and
    flattened to [n, features] (a vector stays as it is; the waveform front-end becomes its mean)."""
    layer_axes(array.shape[1:], pool)
    if pool == "none" or array.ndim == 2:
        return array
    time_axis = 1 + MAP_AXES[array.ndim - 1].index("time")
    return array.mean(axis=time_axis, dtype=np.float64).astype(np.float32).reshape(len(array), -1)


def output_shapes(inspected: Inspected, names: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """{name: output shape without the batch dimension}: from the walk, the front-end, or the Keras layer."""
    from tuner_app.features.frontend import output_shape
    from tuner_app.inspection import probe

    known = {row.name: tuple(row.output_shape) for row in inspected.walk.rows}
    known[probe.FRONTEND] = tuple(output_shape(inspected.frontend))
    if all(name in known for name in names):
        return {name: known[name] for name in names}
    features, blocks = probe.features_model(inspected), [row.name for row in inspected.walk.rows]
    return {name: known.get(name) or tuple(probe.output_layer(features, name, blocks).output.shape[1:])
            for name in names}


def collect(inspected: Inspected, waveforms: np.ndarray, layers: Sequence[str] | None = None,
            pool: str = "time", features=None) -> dict[str, np.ndarray]:
    """{layer: float32 array as saved (see `pooled`)} for waveforms [n, 16000], in `layers` order (default:
    probe.default_layers). Runs the training front-end, then the model; `features` reuses a features model."""
    from tuner_app.inspection import probe

    _check_pool(pool)
    names = list(layers or probe.default_layers(inspected))
    check_layer_names(names)
    if not len(waveforms):
        raise TunerAppError("no stimuli to run through the model")
    features = features if features is not None else probe.features_model(inspected)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for start in range(0, len(waveforms), CHUNK):
        outputs = probe.layer_outputs(inspected, waveforms[start:start + CHUNK], names, features)
        for name in names:
            parts[name].append(pooled(outputs[name], pool))
    return {name: np.concatenate(parts[name]) for name in names}


def layouts(shapes: Mapping[str, Sequence[int]], arrays: Mapping[str, np.ndarray], pool: str) -> dict[str, dict]:
    """Per layer, what metadata says of its array: shape, axes, axes_shape (unflattened), output_shape."""
    result = {}
    for name, array in arrays.items():
        axes, shape = layer_axes(shapes[name], pool), tuple(shapes[name])
        kept = [size for size, axis in zip(shape, MAP_AXES[len(shape)]) if axis in axes]
        if array.shape[1:] != ((int(np.prod(kept)),) if pool == "time" else shape):
            raise ValueError(f"{name}: array {array.shape} does not match output shape {shape} pooled {pool}")
        result[name] = {"shape": list(array.shape), "axes": list(axes), "axes_shape": [len(array), *kept],
                        "output_shape": list(shape)}
    return result


def save(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], stimuli_names: Sequence[str],
         inspected: Inspected, pool: str, rdms: SavedRdms | None = None) -> list[Path]:
    """Write FILE.npz and FILE.mat (and, with `rdms`, rdm_<layer> arrays in both and FILE.rdms.hdf5),
    replacing an older run's set; each file appears whole or not at all, the .npz last. The paths written."""
    path = Path(path).expanduser()
    if path.suffix.lower() != ".npz":
        raise TunerAppError(f"--out: {path} must end in .npz (the .mat and .rdms.hdf5 files are named after it)")
    check_layer_names(list(arrays))
    if any(len(array) != len(stimuli_names) for array in arrays.values()):
        raise ValueError(f"every array needs one row per stimulus ({len(stimuli_names)})")
    matrices = rdms.matrices if rdms is not None else {}
    metadata = _metadata(inspected, arrays, pool, rdms)
    written = []
    check_replaceable(path)
    with storage_errors(path, "--out"):
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in _file_set(path):  # an older run's set, checked to be tuner-app's
            stale.unlink(missing_ok=True)
        if rdms is not None:
            written.append(rdms.write_file(path.with_suffix(".rdms.hdf5")))
        written += _write_mat(path.with_suffix(".mat"), arrays, stimuli_names, matrices, metadata)
        written.append(_write_npz(path, arrays, stimuli_names, matrices, metadata))
    return written


def _file_set(path: Path) -> tuple[Path, Path, Path]:
    return path, path.with_suffix(".mat"), path.with_suffix(".rdms.hdf5")


def check_replaceable(path: Path) -> None:
    """Refuse to write the set of FILE.npz over a file of its names that tuner-app did not write."""
    npz, mat, hdf5 = _file_set(path)
    outputs.check_replaceable_file(npz, "--out", _is_activations_npz, "an activations file")
    outputs.check_replaceable_file(mat, "--out", _is_activations_mat, "an activations .mat file")
    earlier = npz.is_file() or mat.is_file()  # tuner-app's, as just checked: the .rdms.hdf5 is of their set
    outputs.check_replaceable_file(hdf5, "--out", lambda _: earlier, "the RDM file of activations")


def _is_activations_npz(path: Path) -> bool:
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            return False
        with archive:  # only `metadata` is read: the layer arrays may be large
            return "metadata" in archive.files and metadata_of({"metadata": archive["metadata"]}) is not None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return False


def _is_activations_mat(path: Path) -> bool:
    import scipy.io

    try:
        metadata = scipy.io.loadmat(path, variable_names=["metadata"]).get("metadata")
    except (OSError, ValueError, TypeError, NotImplementedError, scipy.io.matlab.MatReadError):
        return False
    return metadata is not None and metadata_of({"metadata": np.asarray(str(np.squeeze(metadata)))}) is not None


def _metadata(inspected: Inspected, arrays: Mapping[str, np.ndarray], pool: str,
              rdms: SavedRdms | None) -> dict[str, Any]:
    from tuner_app import __version__
    from tuner_app.inspection import probe

    layers = layouts(output_shapes(inspected, list(arrays)), arrays, pool)
    if probe.FRONTEND in layers:
        layers[probe.FRONTEND].update(_frontend_axes(inspected, pool))
    metric, dissimilarity = (rdms.metric, rdms.dissimilarity) if rdms is not None else (None, None)
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "tuner_app_version": __version__,
            "model": inspected.name, "origin": inspected.origin, "class_names": list(inspected.class_names),
            "pool": pool, "frontend": inspected.frontend.to_dict(), "layers": layers, "rdm_metric": metric,
            "rdm_dissimilarity": dissimilarity}


def _frontend_axes(inspected: Inspected, pool: str) -> dict[str, Any]:
    """Centres of the spectral front-end's rows (Hz or MFCC index) and, kept unpooled, frames (s)."""
    from tuner_app.features.frontend import feature_axes

    axes = feature_axes(inspected.frontend)
    found = {"frequencies": np.asarray(axes.frequencies).tolist(), "frequency_label": axes.frequency_label}
    found.update({"times_s": np.asarray(axes.times).tolist()} if pool == "none" else {})
    return found if axes.frequencies is not None else {}


def _variables(arrays, matrices) -> dict[str, np.ndarray]:
    """The layer arrays (float32) and rdm_<layer> matrices, named as both files name them."""
    variables = {name: np.asarray(array, np.float32) for name, array in arrays.items()}
    return {**variables, **{RDM_PREFIX + name: matrix for name, matrix in matrices.items()}}


def _write_npz(path: Path, arrays, stimuli_names, matrices, metadata) -> Path:
    content = {"stimuli": np.asarray(list(stimuli_names), dtype=str), "layers": np.asarray(list(arrays), dtype=str),
               "metadata": np.asarray(json.dumps(metadata)), **_variables(arrays, matrices)}
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, **content)
    return path


def _write_mat(path: Path, arrays, stimuli_names, matrices, metadata) -> list[Path]:
    import scipy.io

    too_large = [name for name, array in arrays.items() if np.asarray(array, np.float32).nbytes > MAT_LIMIT]
    if too_large:
        log.warning(f"{path}: not written: {too_large[0]} is over the 2 GiB a MATLAB v5 variable holds "
                    "(use --pool time or fewer --layers)")
        return []
    # n x 1 object arrays: scipy writes them as MATLAB cell arrays of char
    content = {"stimuli": np.array(list(stimuli_names), dtype=object)[:, None],
               "layers": np.array(list(arrays), dtype=object)[:, None], "metadata": json.dumps(metadata),
               **_variables(arrays, matrices)}
    with atomic_path(path) as temporary:
        scipy.io.savemat(temporary, content, do_compression=True, oned_as="column")
    return [path]


def load(path: str | os.PathLike) -> ActivationFile:
    """An activations .npz read back and checked; TunerAppError naming the file if it is not one."""
    path = Path(path).expanduser()
    content = npz_arrays(path)
    metadata = _checked_metadata(path, content)
    stimuli, layers = _names(path, content, "stimuli"), _names(path, content, "layers")
    count = len(stimuli)
    arrays = {name: _array(path, content, name, lambda a: a.ndim >= 2 and len(a) == count,
                           f"[{count}, ...] (one row per stimulus)") for name in layers}
    rdms = {name: _array(path, content, RDM_PREFIX + name, lambda a: a.shape == (count, count), f"[{count}, {count}]")
            for name in layers if RDM_PREFIX + name in content}
    return ActivationFile(stimuli, layers, arrays, rdms, metadata)


def npz_arrays(path: Path, what: str = "activations file") -> dict[str, np.ndarray]:
    """Every array of the .npz at `path`, read without unpickling; TunerAppError naming it if unreadable."""
    if not path.is_file():
        raise TunerAppError(f"{path}: no such {what}")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise TunerAppError(f"{path}: a single .npy array, not an .npz archive")
        with archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:  # ValueError: pickled objects too
        raise TunerAppError(f"{path}: not a readable .npz archive ({err})") from None


def metadata_of(content: Mapping[str, np.ndarray]) -> dict[str, Any] | None:
    """The `metadata` JSON object of an activations file's arrays (load checks the rest); None if not one."""
    metadata = content.get("metadata")
    if metadata is None or metadata.dtype.kind != "U" or metadata.ndim:
        return None
    try:
        document = json.loads(str(metadata))
    except ValueError:
        return None
    return document if isinstance(document, dict) and document.get("format") == FORMAT else None


def _checked_metadata(path: Path, content: Mapping[str, np.ndarray]) -> dict[str, Any]:
    missing = [key for key in RESERVED if key not in content]
    if missing:
        raise TunerAppError(f"{path}: not a tuner-app activations file (no {missing[0]!r} array)")
    metadata = metadata_of(content)
    if metadata is None:
        raise TunerAppError(f"{path}: not a tuner-app activations file (metadata is not {FORMAT} JSON)")
    if not isinstance(metadata.get("format_version"), int) or metadata["format_version"] > FORMAT_VERSION:
        raise TunerAppError(f"{path}: format version {metadata.get('format_version')} is not one this "
                            f"tuner-app reads (up to {FORMAT_VERSION}); update tuner-app")
    return metadata


def _names(path: Path, content: Mapping[str, np.ndarray], key: str) -> tuple[str, ...]:
    names = content[key]
    if names.ndim != 1 or names.dtype.kind != "U" or not len(names):
        raise TunerAppError(f"{path}: {key!r} must be a non-empty 1-D array of strings")
    if len(set(names.tolist())) < len(names):
        raise TunerAppError(f"{path}: {key!r} names something twice")
    return tuple(names.tolist())


def _array(path: Path, content: Mapping[str, np.ndarray], key: str, fits, expected: str) -> np.ndarray:
    if key not in content:
        raise TunerAppError(f"{path}: layer {key!r} is listed but has no array")
    array = content[key]
    if array.dtype.kind != "f" or not fits(array):
        raise TunerAppError(f"{path}: {key!r} is {array.dtype} {array.shape}, not float {expected}")
    return array
