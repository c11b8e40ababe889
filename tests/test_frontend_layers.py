import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import serving_module

from tuner_app.errors import TunerAppError
from tuner_app.features.frontend import FrontendConfig, features, output_shape
from tuner_app.features.layers import Frontend, SpecAugment, frontend_layers

CONFIGS = {
    "stft": FrontendConfig(),
    "mel": FrontendConfig(kind="mel", num_mel_bins=40),
    "mfcc": FrontendConfig(kind="mfcc", num_mel_bins=40, num_mfccs=13, normalize="clip"),
    "waveform": FrontendConfig(kind="waveform"),
}


def waveforms(count=2, seed=0):
    return np.random.default_rng(seed).normal(0, 0.1, (count, 16000)).astype(np.float32)


def spectrograms(count=8, freq=20, time=30, seed=0):
    return np.random.default_rng(seed).normal(1.0, 2.0, (count, freq, time, 1)).astype(np.float32)


def model_of(layers):
    inputs = keras.Input(shape=(16000,))
    outputs = inputs
    for layer in layers:
        outputs = layer(outputs)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_frontend_equals_features_with_a_static_model_shape(kind):
    cfg = CONFIGS[kind]
    model = model_of([Frontend(cfg)])
    assert tuple(model.output.shape) == (None, *output_shape(cfg))
    clips = waveforms()
    out = model(clips).numpy()
    assert out.shape == (2, *output_shape(cfg))
    np.testing.assert_allclose(out, features(clips, cfg).numpy(), rtol=1e-5, atol=1e-5)
    assert model.count_params() == 0 and not model.weights


def test_frontend_rejects_a_wrong_input_length():
    with pytest.raises(TunerAppError, match="frontend: expects waveforms of shape \\[batch, 16000\\]"):
        Frontend(FrontendConfig())(keras.Input(shape=(8000,)))


def test_get_config_round_trips_both_layers():
    cfg = CONFIGS["mfcc"]
    frontend = Frontend.from_config(Frontend(cfg, name="fe").get_config())
    assert frontend.config == cfg and frontend.name == "fe"
    masks = SpecAugment.from_config(SpecAugment(5, 7, seed=3, name="sa").get_config())
    assert (masks.freq_mask, masks.time_mask, masks.seed, masks.name) == (5, 7, 3, "sa")


def test_model_round_trips_through_keras_serialization():
    model = model_of(frontend_layers(CONFIGS["mel"], freq_mask=4, time_mask=6))
    restored = keras.Model.from_config(model.get_config())
    assert [type(layer) for layer in restored.layers[1:]] == [Frontend, SpecAugment]
    assert restored.layers[1].config == CONFIGS["mel"] and restored.layers[2].time_mask == 6
    clips = waveforms()
    np.testing.assert_allclose(restored.predict(clips, verbose=0), model.predict(clips, verbose=0), atol=1e-5)


def test_frontend_layers_adds_masks_only_for_spectral_features_and_nonzero_masks():
    assert [type(layer) for layer in frontend_layers(CONFIGS["stft"])] == [Frontend]
    assert [type(layer) for layer in frontend_layers(CONFIGS["stft"], time_mask=3)] == [Frontend, SpecAugment]
    assert [type(layer) for layer in frontend_layers(CONFIGS["waveform"], 8, 8)] == [Frontend]


@pytest.mark.parametrize("training", [False, None])
def test_spec_augment_is_identity_outside_training(training):
    batch = spectrograms()
    np.testing.assert_array_equal(SpecAugment(8, 8, seed=1)(batch, training=training).numpy(), batch)


def test_spec_augment_is_identity_in_predict_and_with_zero_masks():
    model = model_of(frontend_layers(CONFIGS["stft"], freq_mask=30, time_mask=30))
    clips = waveforms()
    np.testing.assert_allclose(model.predict(clips, verbose=0), features(clips, CONFIGS["stft"]).numpy(), atol=1e-5)
    batch = spectrograms()
    np.testing.assert_array_equal(SpecAugment(0, 0, seed=1)(batch, training=True).numpy(), batch)


def band(flags):
    """The indices flagged, checked to be one contiguous run (or none)."""
    indices = np.flatnonzero(flags)
    assert len(indices) == 0 or np.array_equal(indices, np.arange(indices[0], indices[-1] + 1))
    return indices


def test_training_masks_one_frequency_and_one_time_band_to_the_clip_mean():
    batch = spectrograms(count=16)
    masked = SpecAugment(8, 10, seed=4)(batch, training=True).numpy()
    assert masked.shape == batch.shape
    changed = masked != batch
    assert changed.any()
    for clip, out, cells in zip(batch[..., 0], masked[..., 0], changed[..., 0]):
        np.testing.assert_allclose(out[cells], clip.mean(), rtol=1e-5, atol=1e-5)
        rows, cols = band(cells.all(axis=1)), band(cells.all(axis=0))
        assert len(rows) < 8 and len(cols) < 10
        expected = np.zeros_like(cells)
        expected[rows, :], expected[:, cols] = True, True
        np.testing.assert_array_equal(cells, expected)


def test_masks_wider_than_the_axis_leave_some_cells():
    masked = SpecAugment(50, 50, seed=2)(spectrograms(freq=6, time=5), training=True).numpy()
    for cells in masked[..., 0] != spectrograms(freq=6, time=5)[..., 0]:
        assert not cells.all(axis=1).all() and not cells.all(axis=0).all()


def test_static_shape_survives_a_training_call_in_a_model():
    model = model_of(frontend_layers(CONFIGS["mel"], freq_mask=4, time_mask=4) + [keras.layers.Flatten()])
    assert tuple(model.output.shape) == (None, 40 * 99)
    assert model(waveforms(), training=True).shape == (2, 40 * 99)


def test_seeded_masks_reproduce_and_differ_across_batches():
    batch = spectrograms()
    first, second = SpecAugment(8, 10, seed=7), SpecAugment(8, 10, seed=7)
    runs = [[layer(batch, training=True).numpy() for _ in range(2)] for layer in (first, second)]
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][0], runs[0][1])


def test_masks_differ_across_steps_of_a_traced_training_function():
    layer = SpecAugment(8, 10, seed=5)
    step = tf.function(lambda batch: layer(batch, training=True), autograph=False)
    batch = spectrograms()
    assert not np.array_equal(step(batch).numpy(), step(batch).numpy())


def test_model_with_both_layers_fits():
    model = model_of(frontend_layers(CONFIGS["mel"], 4, 4) + [keras.layers.Flatten(), keras.layers.Dense(2)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(waveforms(4), np.array([0, 1, 0, 1]), batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def graph_op_types(concrete_function):
    graph_def = concrete_function.graph.as_graph_def()
    nested = [node.op for function in graph_def.library.function for node in function.node_def]
    return {node.op for node in graph_def.node} | set(nested)


def test_saved_model_has_no_tensorflow_io_ops_and_matches(tmp_path):
    model = model_of(frontend_layers(CONFIGS["stft"], freq_mask=8, time_mask=8) + [keras.layers.Flatten()])

    serving = serving_module(model)
    tf.saved_model.save(serving, str(tmp_path / "saved"))
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    for function in (serving.serve.get_concrete_function(), loaded.serve.get_concrete_function()):
        op_types = graph_op_types(function)
        assert "RFFT" in op_types  # the walk reaches the front-end's ops
        assert not [op for op in op_types if op.startswith("IO>")]
    clips = waveforms()
    np.testing.assert_allclose(loaded.serve(tf.constant(clips)).numpy(), model.predict(clips, verbose=0), atol=1e-5)


@pytest.mark.parametrize("kind", ["mel", "mfcc"])
def test_a_masked_model_converts_to_tflite_builtins(kind):
    # mfcc's DCT is a matmul (frontend._mfcc_matrix): tf.signal.dct's complex slice has no TFLite builtin.
    model = model_of(frontend_layers(CONFIGS[kind], freq_mask=8, time_mask=8) + [keras.layers.Flatten()])
    serve = tf.function(lambda waveform: model(waveform, training=False), autograph=False)
    function = serve.get_concrete_function(tf.TensorSpec([1, 16000], tf.float32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    assert len(converter.convert()) > 0
