"""Activations for neural comparison: stimuli listed and decoded in a fixed order, every layer's activations
shaped as the layer's output (pooled over time or not), and the files a GLM or MATLAB script reads."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import inspected_model, one_line_error, tone, write_wav

from tuner_app.inspection import activations, stimuli

# 2D maps over an MFCC front-end; 1D maps over time (TC-ResNet); a waveform front-end and its 1D maps.
FAMILIES = ("dscnn_s", "tcresnet8", "seed_1d")
# Written out of name order, nested, one suffix in capitals; (relative path, tone Hz, seconds).
STIMULI = (("b/tone_1200.wav", 1200, 1.0), ("a/tone_300.wav", 300, 1.0), ("d/tone_2000.wav", 2000, 0.5),
           ("a/sub/tone_800.wav", 800, 1.0), ("c.WAV", 500, 1.0))
IN_ORDER = ["a/sub/tone_800.wav", "a/tone_300.wav", "b/tone_1200.wav", "c.WAV", "d/tone_2000.wav"]


@pytest.fixture(scope="module")
def stimulus_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stimuli")
    noise = np.random.default_rng(0)
    for name, hertz, seconds in STIMULI:
        write_wav(folder / name, tone(seconds, freq=hertz) + 0.01 * noise.standard_normal(int(seconds * 16000)))
    (folder / "a" / "notes.txt").write_text("not audio")
    (folder / "b" / "._tone_1200.wav").write_bytes(b"a macOS resource fork, not audio")
    return folder


@pytest.fixture(scope="module")
def waveforms(stimulus_dir):
    return stimuli.read_stimuli(stimuli.list_stimuli(stimulus_dir))


@pytest.fixture(scope="module")
def runs(waveforms):
    """{family: (inspected, {pool: collect(...)})}, each model built and run once for the module."""
    from tuner_app.inspection import probe

    found = {}
    for family in FAMILIES:
        inspected = inspected_model(family)
        features = probe.features_model(inspected)
        found[family] = inspected, {pool: activations.collect(inspected, waveforms, pool=pool, features=features)
                                    for pool in activations.POOLS}
    return found


def test_a_directory_lists_its_audio_recursively_in_relative_path_order(stimulus_dir):
    listed = stimuli.list_stimuli(stimulus_dir)
    assert [stimulus.name for stimulus in listed] == IN_ORDER  # text files and ._ forks left out
    assert all(stimulus.path == stimulus_dir / stimulus.name for stimulus in listed)
    assert stimuli.list_stimuli(stimulus_dir) == listed


def test_a_list_file_keeps_its_order_relative_to_its_folder(tmp_path, stimulus_dir):
    outside = write_wav(tmp_path / "elsewhere" / "x.wav", tone(0.2))
    list_file = tmp_path / "lists" / "order.txt"
    list_file.parent.mkdir()
    lines = ["# fMRI run 1", "", f"  {os.path.relpath(stimulus_dir / 'd/tone_2000.wav', list_file.parent)}  ",
             os.path.relpath(stimulus_dir / "c.WAV", list_file.parent), str(outside)]
    list_file.write_text("\n".join(lines) + "\n")
    listed = stimuli.list_stimuli(list_file)
    assert [stimulus.name for stimulus in listed] == [line.strip() for line in lines[2:]]
    assert [stimulus.path.resolve() for stimulus in listed] == [
        (stimulus_dir / "d/tone_2000.wav").resolve(), (stimulus_dir / "c.WAV").resolve(), outside.resolve()]


@pytest.mark.parametrize("lines, fragments", [
    (["x.wav", "missing.wav"], ["line 2", "missing.wav: no such file"]),
    (["x.wav", "y.wav", "x.wav"], ["line 3", "listed twice (first on line 1)"]),
    (["x.wav", "./x.wav"], ["line 2", "the file of line 1"]),
    (["x.wav", "notes.txt"], ["line 2", "notes.txt is not an audio file"]),
    (["# only a comment", "   "], ["lists no stimuli"]),
])
def test_a_malformed_list_file_names_the_file_and_line(tmp_path, lines, fragments):
    for name in ("x.wav", "y.wav"):
        write_wav(tmp_path / name, tone(0.1))
    (tmp_path / "notes.txt").write_text("not audio")
    list_file = tmp_path / "stimuli.txt"
    list_file.write_text("\n".join(lines))
    one_line_error(lambda: stimuli.list_stimuli(list_file), list_file, *fragments)


def test_a_path_that_lists_nothing_is_an_error(tmp_path):
    one_line_error(lambda: stimuli.list_stimuli(tmp_path / "nowhere"), "no such stimulus directory")
    one_line_error(lambda: stimuli.list_stimuli(tmp_path), tmp_path, "no audio files")
    clip = write_wav(tmp_path / "one.wav", tone(0.1))
    one_line_error(lambda: stimuli.list_stimuli(clip), clip, "an audio file; give a directory")


def test_stimuli_decode_as_training_does_in_their_order(waveforms):
    assert waveforms.shape == (len(IN_ORDER), 16000) and waveforms.dtype == np.float32
    by_name = {name: (hertz, seconds) for name, hertz, seconds in STIMULI}
    for row, name in zip(waveforms, IN_ORDER):
        hertz, seconds = by_name[name]
        samples = int(seconds * 16000)
        assert np.abs(row[:samples] - tone(seconds, freq=hertz)).max() < 0.05  # the tone plus 1% noise
        assert not row[samples:].any()  # padded with silence to 1 s


def test_a_nan_sample_is_an_error_naming_the_file(tmp_path):
    samples = tone(0.5)
    samples[100] = np.nan
    bad = write_wav(tmp_path / "bad.wav", samples, bits=32, float_format=True)
    listed = [stimuli.Stimulus("ok.wav", write_wav(tmp_path / "ok.wav", tone(0.5))), stimuli.Stimulus("bad", bad)]
    one_line_error(lambda: stimuli.read_stimuli(listed), bad, "NaN or infinite")


def _pooled_shape(shape):
    """The documented rule: mean over time, the rest flattened (frequency major); vectors unchanged."""
    if len(shape) == 3:
        return (shape[0] * shape[2],)
    return (shape[1],) if len(shape) == 2 else tuple(shape)


@pytest.mark.parametrize("family", FAMILIES)
def test_activations_have_the_shapes_of_the_layers_outputs(runs, family):
    from tuner_app.features.frontend import output_shape

    inspected, by_pool = runs[family]
    shapes = {"frontend": tuple(output_shape(inspected.frontend))}
    shapes.update((row.name, tuple(row.output_shape)) for row in inspected.walk.rows if row.kind != "dropout")
    count = len(IN_ORDER)
    assert list(by_pool["none"]) == list(by_pool["time"]) == list(shapes)
    for name, shape in shapes.items():
        unpooled, pooled = by_pool["none"][name], by_pool["time"][name]
        assert unpooled.shape == (count, *shape) and unpooled.dtype == np.float32
        assert pooled.shape == (count, *_pooled_shape(shape)) and pooled.dtype == np.float32
        if len(shape) > 1:
            expected = unpooled.mean(axis=len(shape) - 1 if len(shape) == 3 else 1).reshape(count, -1)
            np.testing.assert_allclose(pooled, expected, rtol=1e-5, atol=1e-6)


def test_any_keras_layer_of_the_model_can_be_saved(runs, waveforms, tmp_path):
    inspected = runs["dscnn_s"][0]
    arrays = activations.collect(inspected, waveforms, ["b03_depthwise_separable_dw_act"])
    activations.save(tmp_path / "dw.npz", arrays, IN_ORDER, inspected, "time")
    layout = activations.load(tmp_path / "dw.npz").metadata["layers"]["b03_depthwise_separable_dw_act"]
    assert layout["output_shape"] == [5, 25, 64] and layout["shape"] == [len(IN_ORDER), 5 * 64]


def test_two_runs_give_identical_arrays(runs, stimulus_dir):
    again = activations.collect(inspected_model("dscnn_s"), stimuli.read_stimuli(stimuli.list_stimuli(stimulus_dir)),
                                pool="none")
    first = runs["dscnn_s"][1]["none"]
    assert list(again) == list(first)
    for name in first:
        np.testing.assert_array_equal(again[name], first[name])


@pytest.fixture(scope="module")
def saved(runs, tmp_path_factory):
    from tuner_app.inspection import rdm, rsa

    inspected, by_pool = runs["dscnn_s"]
    rdms = rdm.layer_rdms(by_pool["time"], IN_ORDER, "correlation")
    path = tmp_path_factory.mktemp("saved") / "run" / "acts.npz"
    return path, activations.save(path, by_pool["time"], IN_ORDER, inspected, "time", rsa.saved_rdms(rdms)), rdms


def test_save_writes_npz_mat_and_rsatoolbox_files_that_read_back(runs, saved):
    from rsatoolbox.rdm import load_rdm

    path, written, rdms = saved
    arrays = runs["dscnn_s"][1]["time"]
    assert written == [path.with_suffix(".rdms.hdf5"), path.with_suffix(".mat"), path]
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(p.name for p in written)  # no partial files
    loaded = activations.load(path)
    assert loaded.stimuli == tuple(IN_ORDER) and loaded.layers == tuple(arrays)
    for name, array in arrays.items():
        np.testing.assert_array_equal(loaded.arrays[name], array)
        np.testing.assert_allclose(loaded.rdms[name], rdms.get_matrices()[list(arrays).index(name)])
    from_rsatoolbox = load_rdm(str(written[0]), file_type="hdf5")
    assert list(from_rsatoolbox.rdm_descriptors["layer"]) == list(arrays)
    assert list(from_rsatoolbox.pattern_descriptors["stimulus"]) == IN_ORDER


def test_metadata_says_how_to_read_each_array(runs, saved):
    inspected, by_pool = runs["dscnn_s"]
    metadata = activations.load(saved[0]).metadata
    assert (metadata["format_version"], metadata["pool"], metadata["model"]) == (1, "time", inspected.name)
    assert metadata["class_names"] == list(inspected.class_names) and metadata["rdm_metric"] == "correlation"
    conv = metadata["layers"]["b00_conv"]
    assert conv["axes"] == ["stimulus", "frequency", "channel"] and conv["output_shape"] == [5, 25, 64]
    assert conv["axes_shape"] == [len(IN_ORDER), 5, 64] and conv["shape"] == [len(IN_ORDER), 5 * 64]
    unflattened = by_pool["time"]["b00_conv"].reshape(conv["axes_shape"])
    np.testing.assert_allclose(unflattened[2, 3, 7], by_pool["none"]["b00_conv"][2, 3, :, 7].mean(), rtol=1e-5)
    frontend = metadata["layers"]["frontend"]
    assert frontend["frequency_label"] == "MFCC coefficient" and len(frontend["frequencies"]) == 10
    assert metadata["layers"]["b08_dense"]["axes"] == ["stimulus", "unit"]


def test_the_mat_file_holds_the_same_variables(runs, saved):
    import scipy.io

    path, arrays = saved[0], runs["dscnn_s"][1]["time"]
    content = scipy.io.loadmat(path.with_suffix(".mat"))
    assert [str(cell[0]) for cell in content["stimuli"][:, 0]] == IN_ORDER
    assert [str(cell[0]) for cell in content["layers"][:, 0]] == list(arrays)
    assert json.loads(str(content["metadata"][0])) == activations.load(path).metadata
    for name, array in arrays.items():
        np.testing.assert_array_equal(content[name], array)
    assert content["rdm_b08_dense"].shape == (len(IN_ORDER),) * 2


def test_an_interrupted_save_leaves_no_file(runs, tmp_path, monkeypatch):
    import scipy.io

    def disk_full(path, *args, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(scipy.io, "savemat", disk_full)
    inspected, by_pool = runs["tcresnet8"]
    one_line_error(lambda: activations.save(tmp_path / "acts.npz", by_pool["time"], IN_ORDER, inspected, "time"),
                    tmp_path / "acts.npz", "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_a_new_save_replaces_the_older_set(runs, saved, tmp_path):
    import shutil

    inspected, by_pool = runs["dscnn_s"]
    older = shutil.copytree(saved[0].parent, tmp_path / "older")
    path = older / saved[0].name
    written = activations.save(path, {"b08_dense": by_pool["time"]["b08_dense"]}, IN_ORDER, inspected, "time")
    assert sorted(older.iterdir()) == sorted(written) == sorted([path, path.with_suffix(".mat")])
    assert activations.load(path).layers == ("b08_dense",) and activations.load(path).rdms == {}


@pytest.mark.parametrize("layers, fragment", [
    (["stimuli"], "'stimuli' cannot name"), (["rdm_b00_conv"], "cannot name"), (["b00-conv"], "cannot name"),
    (["b00_conv", "b00_conv"], "b00_conv is named twice"),
])
def test_layer_names_must_be_file_variables(runs, waveforms, layers, fragment):
    inspected = runs["dscnn_s"][0]
    one_line_error(lambda: activations.collect(inspected, waveforms[:1], layers), "--layers", fragment)


def test_unknown_pool_and_out_suffix_are_errors(runs, waveforms, tmp_path):
    inspected, by_pool = runs["dscnn_s"]
    one_line_error(lambda: activations.collect(inspected, waveforms, pool="max"), "--pool", "'max'")
    one_line_error(lambda: activations.save(tmp_path / "acts.h5", by_pool["time"], IN_ORDER, inspected, "time"),
                    "--out", "acts.h5", "must end in .npz")


def _rewritten(saved, tmp_path, change):
    with np.load(saved[0]) as archive:
        content = {key: archive[key] for key in archive.files}
    change(content)
    path = tmp_path / "changed.npz"
    np.savez(path, **content)
    return path


@pytest.mark.parametrize("change, fragment", [
    (lambda c: c.pop("metadata"), "no 'metadata' array"),
    (lambda c: c.update(metadata=np.asarray('{"format": "other"}')), "not a tuner-app activations file"),
    (lambda c: c.update(metadata=np.asarray(str(c["metadata"]).replace('"format_version": 1', '"format_version": 9'))),
     "format version 9"),
    (lambda c: c.update(b00_conv=c["b00_conv"][:3]), "'b00_conv' is float32 (3, 320)"),
    (lambda c: c.pop("b08_dense"), "layer 'b08_dense' is listed but has no array"),
    (lambda c: c.update(rdm_b08_dense=np.zeros((4, 4))), "'rdm_b08_dense' is float64 (4, 4)"),
    (lambda c: c.update(stimuli=np.asarray(IN_ORDER[:1] * 5)), "'stimuli' names something twice"),
])
def test_load_names_the_file_and_what_is_wrong(saved, tmp_path, change, fragment):
    path = _rewritten(saved, tmp_path, change)
    one_line_error(lambda: activations.load(path), path, fragment)


def test_load_refuses_what_is_not_an_npz(tmp_path):
    text, array = tmp_path / "acts.npz", tmp_path / "one.npy"
    text.write_text("layer,value\n")
    np.save(array, np.zeros(3))
    one_line_error(lambda: activations.load(text), text, "not a readable .npz archive")
    one_line_error(lambda: activations.load(array), array, "a single .npy array")
    one_line_error(lambda: activations.load(tmp_path / "gone.npz"), "no such activations file")
