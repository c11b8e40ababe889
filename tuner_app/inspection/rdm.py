"""Representational dissimilarity matrices of layer activations, made with rsatoolbox, and the RDM files a
user supplies, read and checked (rsa compares them).

Stimuli keep the order of the activations file: RDMs are computed one row per stimulus (never grouped by a
descriptor, which rsatoolbox sorts alphabetically), and a user's RDM must list the same stimuli in that order.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from tuner_app.errors import TunerAppError
from tuner_app.inspection import activations

log = logging.getLogger(__name__)

METRICS = ("correlation", "euclidean", "poisson")
METRIC_MEANINGS = {
    "correlation": "1 - Pearson r between two stimuli's patterns",
    "euclidean": "squared Euclidean distance / number of features (rsatoolbox)",
    "poisson": "symmetrised KL divergence of Poisson rates (rsatoolbox; prior_lambda 1, prior_weight 0.1)",
}
RDM_SUFFIXES = (".npy", ".csv", ".txt", ".npz", ".mat", ".hdf5", ".h5")
TOLERANCE = 1e-6  # relative to the largest dissimilarity when that is above 1


def layer_rdms(arrays: Mapping[str, np.ndarray], stimuli_names: Sequence[str], metric: str = "correlation",
               skip_undefined: bool = False):
    """rsatoolbox RDMs, one per layer (rdm_descriptors layer), over the stimuli in their given order
    (pattern_descriptors stimulus); arrays [n, ...] are flattened to one pattern per stimulus. A layer where
    `metric` is undefined (e.g. correlation of a constant pattern) is an error, or with `skip_undefined`
    left out with a warning."""
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import calc_rdm

    check_choice("--metric", metric, METRICS)
    vectors = {}
    for layer, array in arrays.items():
        if len(array) != len(stimuli_names):
            raise ValueError(f"{layer}: {len(array)} patterns for {len(stimuli_names)} stimuli")
        patterns = np.asarray(array, np.float64).reshape(len(array), -1)
        reason = _undefined_reason(patterns, metric, stimuli_names)
        if reason and not skip_undefined:
            raise TunerAppError(f"layer {layer}: {reason}")
        if reason:
            log.warning(f"layer {layer}: no RDM: {reason}")
            continue
        dataset = Dataset(patterns, obs_descriptors={"stimulus": list(stimuli_names)})
        vectors[layer] = calc_rdm(dataset, method=metric).dissimilarities[0]
    if not vectors:
        raise TunerAppError(f"no layer has a {metric} RDM")
    return _rdms(np.stack(list(vectors.values())), list(vectors), stimuli_names, metric)


def check_choice(option: str, value: str, choices: Sequence[str]) -> None:
    """TunerAppError naming `option` unless `value` is one of `choices`."""
    if value not in choices:
        raise TunerAppError(f"{option}: {value!r} is not one of {', '.join(choices)}")


def _undefined_reason(patterns: np.ndarray, metric: str, names: Sequence[str]) -> str | None:
    """Why `metric` has no value here: too few stimuli, a flat pattern's correlation, a log of <= 0."""
    if len(patterns) < 2:
        return f"an RDM needs 2 or more stimuli ({len(patterns)} given)"
    if metric == "correlation":
        flat = np.flatnonzero(np.ptp(patterns, axis=1) == 0)
        if flat.size:
            return (f"the pattern of {names[flat[0]]} is constant ({patterns.shape[1]} features), so its "
                    "correlation distance is undefined: use --metric euclidean or leave the layer out")
    if metric == "poisson" and patterns.min() <= -0.1:  # rsatoolbox takes log((x + 0.1) / 1.1)
        return f"poisson needs activations above -0.1 (lowest {patterns.min():.3g}): use correlation or euclidean"
    return None


def _rdms(dissimilarities: np.ndarray, layers: Sequence[str], stimuli_names: Sequence[str], metric: str):
    from rsatoolbox.rdm import RDMs

    return RDMs(dissimilarities, dissimilarity_measure=metric, descriptors={"metric": metric},
                rdm_descriptors={"layer": list(layers)}, pattern_descriptors={"stimulus": list(stimuli_names)})


def layer_names(rdms) -> list[str]:
    """The name of each RDM: its `layer` descriptor (ours), else `name`, else its index."""
    descriptors = rdms.rdm_descriptors
    names = descriptors.get("layer", descriptors.get("name", [f"rdm{i}" for i in range(rdms.n_rdm)]))
    return [str(name) for name in names]


def matrices(rdms) -> dict[str, np.ndarray]:
    """{layer: float64 [n, n]} of rsatoolbox RDMs."""
    return dict(zip(layer_names(rdms), rdms.get_matrices().astype(np.float64)))


def metric_of(rdms) -> str:
    return str(rdms.descriptors.get("metric", rdms.dissimilarity_measure))


def ascii_name(name: str) -> str:
    """`name` as rsatoolbox's HDF5 writer can store it (ASCII only): other characters as \\x.. escapes."""
    return name.encode("ascii", "backslashreplace").decode("ascii")


def reference_rdms(path: str | os.PathLike, stimuli_names: Sequence[str], metric: str = "correlation"):
    """The RDMs of a file a user supplies, checked against our stimuli: .npy or .csv/.txt (one square matrix),
    .npz (each [n, n] array; optional `stimuli`), rsatoolbox .hdf5/.h5, or a tuner-app activations .npz (its
    rdm_* arrays, else RDMs of its activations by `metric`)."""
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if suffix not in RDM_SUFFIXES:
        raise TunerAppError(f"{path}: unknown RDM file type {suffix or '(none)'!r}; use one of "
                            f"{', '.join(RDM_SUFFIXES)} or a tuner-app activations .npz")
    if not path.is_file():
        raise TunerAppError(f"{path}: no such RDM file")
    if suffix in (".hdf5", ".h5"):
        return _hdf5_rdms(path, stimuli_names)
    if suffix == ".npz":
        return _npz_rdms(path, stimuli_names, metric)
    if suffix == ".mat":
        return _mat_rdms(path, stimuli_names)
    matrix = _npy_matrix(path) if suffix == ".npy" else _text_matrix(path)
    _check_matrix(path, path.stem, matrix, len(stimuli_names))
    return _rdms(matrix[None], [path.stem], stimuli_names, "user")


def _npy_matrix(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise TunerAppError(f"{path}: not a readable .npy array ({err})") from None


def _text_matrix(path: Path) -> np.ndarray:
    try:
        text = path.read_text(encoding="utf-8-sig")
        return np.loadtxt(text.splitlines(), delimiter="," if "," in text else None, ndmin=2)
    except (OSError, UnicodeDecodeError) as err:
        raise TunerAppError(f"{path}: cannot read the RDM ({err})") from None
    except ValueError as err:
        raise TunerAppError(f"{path}: not a numeric matrix without header ({str(err).splitlines()[0]})") from None


def _check_matrix(path: Path, key: str, matrix: np.ndarray, count: int) -> None:
    where = f"{path}: RDM {key!r}" if path.suffix.lower() in (".npz", ".mat", ".hdf5", ".h5") else f"{path}: the RDM"
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.dtype.kind not in "fiu":
        raise TunerAppError(f"{where} is a {matrix.dtype} array of shape {matrix.shape}, not a square numeric "
                            "matrix")
    if len(matrix) != count:
        raise TunerAppError(f"{where} is {len(matrix)}x{len(matrix)}, but there are {count} stimuli")
    bad = np.argwhere(~np.isfinite(matrix))
    if bad.size:
        raise TunerAppError(f"{where} has a NaN or infinite value at row {bad[0][0] + 1}, column {bad[0][1] + 1}")
    tolerance = TOLERANCE * max(1.0, float(np.abs(matrix).max()))
    asymmetry = np.abs(matrix - matrix.T)
    if asymmetry.max() > tolerance:
        row, column = np.unravel_index(np.argmax(asymmetry), matrix.shape)
        raise TunerAppError(f"{where} is not symmetric (row {row + 1}, column {column + 1} differs from its "
                            "mirror)")
    if np.abs(np.diag(matrix)).max() > tolerance:
        raise TunerAppError(f"{where} has a non-zero diagonal: give dissimilarities (e.g. 1 - r), not similarities")


def _check_stimuli(path: Path, theirs: Sequence[str], ours: Sequence[str]) -> None:
    """TunerAppError unless the file's stimulus names are ours in our order (the error says how they differ)."""
    theirs, ours = [str(name) for name in theirs], list(ours)
    if theirs == ours:
        return
    their_set, our_set = set(theirs), set(ours)
    missing, extra = [n for n in ours if n not in their_set], [n for n in theirs if n not in our_set]
    if missing or extra or len(theirs) != len(ours):
        raise TunerAppError(f"{path}: other stimuli than ours ({len(theirs)} vs {len(ours)}; ours not in it: "
                            f"{', '.join(missing[:3]) or 'none'}; its not in ours: {', '.join(extra[:3]) or 'none'})")
    position = next(i for i, (a, b) in enumerate(zip(theirs, ours)) if a != b)
    raise TunerAppError(f"{path}: stimulus {position + 1} is {theirs[position]} but ours is {ours[position]} "
                        "(the same stimuli in another order: reorder its rows and columns)")


def _npz_rdms(path: Path, stimuli_names: Sequence[str], metric: str):
    content = activations.npz_arrays(path, "RDM file")
    if activations.metadata_of(content) is not None:
        return _activations_rdms(path, stimuli_names, metric)
    if "stimuli" in content:
        _check_stimuli(path, np.atleast_1d(content.pop("stimuli")).tolist(), stimuli_names)
    return _named_rdms(path, content, stimuli_names)


def _mat_rdms(path: Path, stimuli_names: Sequence[str]):
    """A MATLAB file of RDM variables (n x n each; optional `stimuli`, a cell array of names), as SPM users
    save them with `save(..., '-v7')`."""
    import scipy.io

    try:
        content = {key: value for key, value in scipy.io.loadmat(str(path)).items() if not key.startswith("__")}
    # NotImplementedError: a -v7.3 file (HDF5 inside)
    except (OSError, ValueError, TypeError, NotImplementedError, scipy.io.matlab.MatReadError) as err:
        raise TunerAppError(f"{path}: not a readable MATLAB file ({str(err).splitlines()[0]}; save it with "
                            "-v7)") from None
    if "stimuli" in content:
        _check_stimuli(path, [str(np.squeeze(name)) for name in np.ravel(content.pop("stimuli"))], stimuli_names)
    return _named_rdms(path, content, stimuli_names)


def _named_rdms(path: Path, content: Mapping[str, np.ndarray], stimuli_names: Sequence[str]):
    """The RDMs of a user's file, each named by its key, every one checked."""
    if not content:
        raise TunerAppError(f"{path}: holds no RDM")
    for key, matrix in content.items():
        _check_matrix(path, key, matrix, len(stimuli_names))
    return _rdms(np.stack(list(content.values())), list(content), stimuli_names, "user")


def _activations_rdms(path: Path, stimuli_names: Sequence[str], metric: str):
    loaded = activations.load(path)
    _check_stimuli(path, loaded.stimuli, stimuli_names)
    if not loaded.rdms:  # a layer without an RDM (a constant pattern) leaves the comparison with a warning
        return layer_rdms(loaded.arrays, loaded.stimuli, metric, skip_undefined=True)
    measure = loaded.metadata.get("rdm_metric") or "unknown"
    return _rdms(np.stack(list(loaded.rdms.values())), list(loaded.rdms), stimuli_names, measure)


def _hdf5_rdms(path: Path, stimuli_names: Sequence[str]):
    from rsatoolbox.rdm import load_rdm

    try:
        loaded = load_rdm(str(path), file_type="hdf5")  # HDF5 only: rsatoolbox's pickle format is never read
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise TunerAppError(f"{path}: not an rsatoolbox RDMs HDF5 file ({type(err).__name__}: {err})") from None
    names = layer_names(loaded)
    if "stimulus" in loaded.pattern_descriptors:
        _check_stimuli(path, loaded.pattern_descriptors["stimulus"], [ascii_name(n) for n in stimuli_names])
    for name, matrix in zip(names, loaded.get_matrices()):
        _check_matrix(path, name, matrix, len(stimuli_names))
    return _rdms(loaded.get_matrices(), names, stimuli_names, metric_of(loaded))
