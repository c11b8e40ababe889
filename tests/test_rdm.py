"""RDMs with rsatoolbox: known values, symmetric with a zero diagonal, the stimuli in our order; RDM files a
user supplies, checked with one-line errors; and the comparison table and heat map."""

from __future__ import annotations

import csv
import struct

import numpy as np
import pytest
from conftest import inspected_model, one_line_error
from scipy.stats import spearmanr

from tuner_app.inspection import activations, rdm, rsa, rsa_figures

# Pearson r with `first`: 1, -1, 0, and 0 with every other pattern too; named out of alphabetical order.
NAMES = ["zeta.wav", "alpha.wav", "mid.wav", "beta.wav"]
PATTERNS = np.array([[1.0, 2, 3, 4], [3, 5, 7, 9], [4, 3, 2, 1], [1, -1, -1, 1]])
CORRELATION_RDM = np.array([[0.0, 0, 2, 1], [0, 0, 2, 1], [2, 2, 0, 1], [1, 1, 1, 0]])
STIMULI = [f"s{index}.wav" for index in range(6)]


def _random_layers(seed=0):
    rng = np.random.default_rng(seed)
    return {"b07_global_average_pool": rng.random((len(STIMULI), 64)).astype(np.float32),
            "b08_dense": rng.random((len(STIMULI), 4)).astype(np.float32)}


def test_correlation_rdm_is_one_minus_pearson_in_the_stimuli_order():
    rdms = rdm.layer_rdms({"vector": PATTERNS, "map": PATTERNS.reshape(4, 2, 2)}, NAMES, "correlation")
    assert rdm.layer_names(rdms) == ["vector", "map"]
    assert list(rdms.pattern_descriptors["stimulus"]) == NAMES  # never sorted alphabetically
    for matrix in rdms.get_matrices():
        np.testing.assert_allclose(matrix, CORRELATION_RDM, atol=1e-12)


def test_euclidean_rdm_is_rsatoolbox_squared_distance_per_feature():
    matrix = rdm.layer_rdms({"layer": np.array([[0.0, 0], [3, 4], [0, 1]])}, NAMES[:3], "euclidean").get_matrices()[0]
    np.testing.assert_allclose(matrix, [[0, 12.5, 0.5], [12.5, 0, 9.0], [0.5, 9.0, 0]])


@pytest.mark.parametrize("metric", rdm.METRICS)
def test_rdms_are_symmetric_with_a_zero_diagonal(metric):
    matrices = rdm.layer_rdms(_random_layers(), STIMULI, metric).get_matrices()
    assert matrices.shape == (2, len(STIMULI), len(STIMULI))
    for matrix in matrices:
        np.testing.assert_allclose(matrix, matrix.T, atol=1e-12)
        np.testing.assert_allclose(np.diag(matrix), 0, atol=1e-12)
        assert (matrix[np.triu_indices(len(STIMULI), 1)] > 0).all()


def test_an_undefined_dissimilarity_is_an_error_or_left_out():
    layers = {**_random_layers(), "frontend": np.ones((len(STIMULI), 1), np.float32)}
    one_line_error(lambda: rdm.layer_rdms(layers, STIMULI), "layer frontend", "s0.wav is constant",
                    "--metric euclidean")
    assert rdm.layer_names(rdm.layer_rdms(layers, STIMULI, skip_undefined=True)) == list(_random_layers())
    negative = {"b00_conv": -np.ones((len(STIMULI), 3))}
    one_line_error(lambda: rdm.layer_rdms(negative, STIMULI, "poisson"), "b00_conv", "above -0.1")
    one_line_error(lambda: rdm.layer_rdms(layers, STIMULI, "cosine"), "--metric", "'cosine'")


def test_rsatoolbox_reads_our_rdm_file_even_with_non_ascii_names(tmp_path):
    from rsatoolbox.rdm import load_rdm

    names = [*NAMES[:3], "café.wav"]
    rdms = rdm.layer_rdms({"vector": PATTERNS}, names)
    path = rsa.save_rdms(rdms, tmp_path / "acts.rdms.hdf5")
    rsa.save_rdms(rdms, path)  # over an older file
    loaded = load_rdm(str(path), file_type="hdf5")
    np.testing.assert_allclose(loaded.get_matrices(), rdms.get_matrices())
    assert list(loaded.pattern_descriptors["stimulus"]) == [*NAMES[:3], "caf\\xe9.wav"]
    assert list(loaded.rdm_descriptors["layer"]) == ["vector"] and loaded.descriptors["metric"] == "correlation"
    assert rdms.pattern_descriptors["stimulus"] == names  # escaped in the file only
    np.testing.assert_allclose(rdm.reference_rdms(path, names).get_matrices()[0], CORRELATION_RDM, atol=1e-12)


def test_similarity_is_spearman_between_rdms():
    rdms = rdm.layer_rdms(_random_layers(), STIMULI, "euclidean")
    values = rsa.similarity(rdms, rdms)
    vectors = rdms.get_vectors()
    assert values.shape == (2, 2)
    np.testing.assert_allclose(np.diag(values), 1.0)
    np.testing.assert_allclose(values[0, 1], spearmanr(vectors[0], vectors[1]).statistic)
    squared = rdm._rdms(rdms.get_matrices()[:1] ** 2, ["squared"], STIMULI, "user")  # same order of pairs
    np.testing.assert_allclose(rsa.similarity(rdms, squared)[0, 0], 1.0)
    one_line_error(lambda: rsa.similarity(rdms, rdms, "pearson"), "--method", "'pearson'")
    tiny = rdm.layer_rdms({"layer": PATTERNS[:2]}, NAMES[:2], "euclidean")
    one_line_error(lambda: rsa.similarity(tiny, tiny), "3 or more")


@pytest.fixture(scope="module")
def activation_files(tmp_path_factory):
    """Two activations files of the same stimuli: one with its RDMs, one without."""
    inspected, folder = inspected_model("dscnn_s"), tmp_path_factory.mktemp("acts")
    arrays = _random_layers()
    activations.save(folder / "with.npz", arrays, STIMULI, inspected, "time",
                     rsa.saved_rdms(rdm.layer_rdms(arrays, STIMULI)))
    activations.save(folder / "without.npz", arrays, STIMULI, inspected, "time")
    return folder / "with.npz", folder / "without.npz", rdm.layer_rdms(arrays, STIMULI).get_matrices()


def _write_reference(kind, folder, matrix, names):
    path = folder / f"reference{kind.split('+')[0]}"
    if kind == ".npy":
        np.save(path, matrix)
    elif kind in (".csv", ".txt"):
        np.savetxt(path, matrix, delimiter="," if kind == ".csv" else " ")
    elif kind.startswith(".npz"):
        np.savez(path, v1=matrix, **({"stimuli": np.asarray(names)} if kind == ".npz+stimuli" else {}))
    elif kind.startswith(".mat"):  # as MATLAB's save writes it: names as a cell array of char
        import scipy.io

        cell = np.array(list(names), dtype=object)[:, None]
        scipy.io.savemat(path, {"v1": matrix, **({"stimuli": cell} if kind == ".mat+stimuli" else {})})
    else:
        rsa.save_rdms(rdm._rdms(matrix[None], ["v1"], names, "user"), path)
    return path


@pytest.mark.parametrize("kind", [".npy", ".csv", ".txt", ".npz", ".npz+stimuli", ".mat", ".mat+stimuli", ".hdf5",
                                  ".h5"])
def test_a_user_rdm_reads_from_every_file_type(tmp_path, kind):
    path = _write_reference(kind, tmp_path, CORRELATION_RDM, NAMES)
    rdms = rdm.reference_rdms(path, NAMES)
    assert rdms.n_rdm == 1 and list(rdms.pattern_descriptors["stimulus"]) == NAMES
    np.testing.assert_allclose(rdms.get_matrices()[0], CORRELATION_RDM)


def test_an_activations_file_gives_its_rdms_or_computes_them(activation_files):
    with_rdms, without_rdms, expected = activation_files
    for path in (with_rdms, without_rdms):
        rdms = rdm.reference_rdms(path, STIMULI)
        assert rdm.layer_names(rdms) == list(_random_layers())
        np.testing.assert_allclose(rdms.get_matrices(), expected, atol=1e-12)


def _asymmetric():
    matrix = CORRELATION_RDM.copy()
    matrix[0, 3] += 0.01
    return matrix


@pytest.mark.parametrize("name, content, fragment", [
    ("small.npy", CORRELATION_RDM[:3, :3], "is 3x3, but there are 4 stimuli"),
    ("wide.csv", "0,1,2,3\n1,0,1,2\n2,1,0,1\n", "shape (3, 4), not a square numeric matrix"),
    ("flat.npy", np.zeros(16), "not a square numeric matrix"),
    ("gap.txt", "0 1 2 3\n1 0 1 2\n2 1 0 nan\n3 2 nan 0\n", "NaN or infinite value at row 3, column 4"),
    ("skew.npy", _asymmetric(), "not symmetric (row 1, column 4"),
    ("similar.npy", 1 - CORRELATION_RDM, "non-zero diagonal"),
    ("header.csv", "a,b,c,d\n0,1,2,3\n1,0,1,2\n2,1,0,1\n3,2,1,0\n", "not a numeric matrix without header"),
    ("rdm.json", "[[0]]", "unknown RDM file type '.json'"),
    ("other.npz", {"v1": CORRELATION_RDM, "stimuli": np.asarray(NAMES[::-1])},
     "stimulus 1 is beta.wav but ours is zeta.wav"),
    ("fewer.npz", {"v1": CORRELATION_RDM, "stimuli": np.asarray([*NAMES[:3], "new.wav"])},
     "other stimuli than ours"),
    ("cube.npz", {"v1": np.zeros((4, 4, 4))}, "RDM 'v1' is a float64 array of shape (4, 4, 4)"),
    ("pickled.npz", {"v1": np.array([None, 1], dtype=object)}, "not a readable .npz archive"),
    ("notes.hdf5", "not HDF5", "not an rsatoolbox RDMs HDF5 file"),
    ("notes.mat", "not MATLAB", "not a readable MATLAB file"),
])
def test_a_malformed_user_rdm_is_a_one_line_error_naming_the_file(tmp_path, name, content, fragment):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, dict):
        np.savez(path, **content)
    else:
        np.save(path, content)
    one_line_error(lambda: rdm.reference_rdms(path, NAMES), path, fragment)


def test_compare_writes_a_table_and_a_heat_map(activation_files, tmp_path):
    with_rdms, _, expected = activation_files
    reference = expected[1] + np.where(np.eye(len(STIMULI)), 0, np.linspace(0, 0.01, len(STIMULI) ** 2).reshape(6, 6))
    reference = (reference + reference.T) / 2
    user = tmp_path / "fmri.csv"
    np.savetxt(user, reference, delimiter=",")
    rows = rsa.compare(with_rdms, user, tmp_path / "out" / "fmri")
    upper = np.triu_indices(len(STIMULI), 1)
    assert [(a, b) for a, b, _ in rows] == [("b07_global_average_pool", "fmri"), ("b08_dense", "fmri")]
    for (_, _, value), matrix in zip(rows, expected):
        np.testing.assert_allclose(value, spearmanr(matrix[upper], reference[upper]).statistic)
    with open(tmp_path / "out" / "fmri.csv", newline="") as handle:
        table = list(csv.reader(handle))
    assert table[0] == ["layer_a", "layer_b", "value"]
    assert [(a, b) for a, b, _ in table[1:]] == [(a, b) for a, b, _ in rows]
    assert [float(v) for _, _, v in table[1:]] == pytest.approx([v for _, _, v in rows], rel=1e-5)
    assert _png_size(tmp_path / "out" / "fmri.png") == rsa_figures.HEATMAP_SIZE
    table_lines = rsa.format_table(rows).splitlines()
    assert table_lines[0].split() == ["layer_a", "layer_b", "spearman"] and len(table_lines) == 1 + len(rows)
    assert table_lines[1].split() == ["b07_global_average_pool", "fmri", f"{rows[0][2]:.4f}"]
    same = rsa.compare(with_rdms, with_rdms, tmp_path / "self")
    assert [value for a, b, value in same if a == b] == pytest.approx([1.0, 1.0])


def _png_size(path):
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_rdm_figures_have_fixed_sizes(tmp_path):
    rdms = rdm.layer_rdms(_random_layers(), STIMULI)
    grid, heatmap = rsa.write_rdm_figures(rdms, tmp_path / "acts.npz")
    assert (grid.name, heatmap.name) == ("acts.rdms.png", "acts.rdm_similarity.png")
    assert _png_size(grid) == rsa_figures.GRID_SIZE and _png_size(heatmap) == rsa_figures.HEATMAP_SIZE
    assert sorted(path.name for path in tmp_path.iterdir()) == ["acts.rdm_similarity.png", "acts.rdms.png"]


def test_percentiles_rank_the_dissimilarities():
    shown = rsa_figures.percentiles(np.array([[0.0, 0.2, 0.9], [0.2, 0, 0.5], [0.9, 0.5, 0]]))
    np.testing.assert_allclose(shown[np.triu_indices(3, 1)], [0, 100, 50])
    assert np.isnan(np.diag(shown)).all() and np.allclose(shown[1, 0], shown[0, 1])
