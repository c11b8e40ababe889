"""`tuner-app visualize`: figures of one model for one clip (filters, feature maps, saliency, sizes), the HTML
page, and saliency checked against hand-made models whose answer is known."""

import base64
import re
import struct

import numpy as np
import pytest
from conftest import FAMILY_SPACES, inspected_model

from tuner_app.errors import TunerAppError
from tuner_app.features import frontend
from tuner_app.inspection import (
    figures,
    filter_figures,
    map_figures,
    probe,
    report,
    saliency,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Blocks with weights and a (time, ch) or (freq, time, ch) output: one feature-map figure each.
MAP_BLOCKS = {
    "seed_1d": ["b00_conv", "b02_conv"],
    "seed_2d": ["b00_conv", "b02_conv"],
    "dscnn_s": ["b00_conv", *(f"b0{index}_depthwise_separable" for index in range(2, 6))],
    "tcresnet8": ["b01_conv", *(f"b0{index}_temporal_residual" for index in range(2, 5))],
    "bcresnet1": ["b00_conv", *(f"b{index:02d}_broadcast_residual" for index in range(1, 13)),
                  "b13_frequency_collapse", "b14_conv"],
}
WITH_DEPTHWISE = {"dscnn_s", "bcresnet1"}
ASKED_CLASS = "class1"


def png_size(path):
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    header = path.read_bytes()[:24]
    assert header[:8] == PNG_SIGNATURE and header[12:16] == b"IHDR", path
    return struct.unpack(">II", header[16:24])


def expected_size(name):
    for prefix, size in (("filters", figures.FILTERS_SIZE), ("feature_maps_", figures.FEATURE_MAP_SIZE),
                         ("saliency_", figures.SALIENCY_SIZE), ("sizes", figures.SIZES_SIZE)):
        if name.startswith(prefix):
            return size
    raise AssertionError(f"unexpected figure {name}")


@pytest.fixture(scope="module")
def models():
    """Each family's seeded model, built once for the module."""
    built = {}

    def model(space_name):
        if space_name not in built:
            built[space_name] = inspected_model(space_name)
        return built[space_name]

    return model


@pytest.fixture(scope="module")
def clip():
    """A 440 Hz tone in noise: not silence, so the features differ from integrated gradients' baseline."""
    rng = np.random.default_rng(0)
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    return (tone + 0.05 * rng.standard_normal(16000)).astype(np.float32)


@pytest.fixture(scope="module", params=list(FAMILY_SPACES))
def rendered(request, models, clip, tmp_path_factory):
    """(space name, inspected, the paths visualize returned, out dir) for each family, HTML included."""
    inspected = models(request.param)
    out_dir = tmp_path_factory.mktemp(request.param) / "figures"
    paths = report.visualize(inspected, clip, out_dir, classes=[ASKED_CLASS], html=True, clip_name="tone.wav")
    return request.param, inspected, paths, out_dir


def predicted_class(inspected, clip):
    """The class the whole model (waveform in) predicts: visualize predicts with the features model."""
    return inspected.class_names[int(np.argmax(inspected.model(clip[None], training=False)[0]))]


def test_every_family_gets_each_figure_as_a_png_of_its_fixed_size(rendered, clip):
    space_name, inspected, paths, out_dir = rendered
    predicted = predicted_class(inspected, clip)
    expected = ["filters.png", *(["filters_depthwise.png"] if space_name in WITH_DEPTHWISE else []),
                *(f"feature_maps_{block}.png" for block in MAP_BLOCKS[space_name]),
                *dict.fromkeys([f"saliency_{predicted}.png", f"saliency_{ASKED_CLASS}.png"]),
                "sizes.png", "report.html"]
    assert [path.name for path in paths] == expected
    assert all(path.parent == out_dir for path in paths)
    for path in paths[:-1]:
        assert png_size(path) == expected_size(path.name), path.name
        assert path.stat().st_size > 5000, f"{path.name} is nearly empty"


def test_the_html_page_holds_every_figure_and_the_prediction(rendered):
    _, inspected, paths, _ = rendered
    page = paths[-1].read_text(encoding="utf-8")
    inlined = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert [base64.b64decode(data) for data in inlined] == [path.read_bytes() for path in paths[:-1]]
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert all(link.startswith("data:image/png;base64,") for link in links), "the page needs no other file"
    assert page.count("<figcaption>") == len(paths) - 1
    assert f"<h1>{inspected.name}</h1>" in page and "tone.wav" in page and inspected.origin in page
    assert f"{inspected.walk.params_total:,}" in page
    prediction = re.search(r"<th>prediction</th><td>([^<]+)</td>", page).group(1)
    shown = re.findall(r"(class\d) (0\.\d{3})", prediction)
    assert len(shown) == 3 and [float(p) for _, p in shown] == sorted((float(p) for _, p in shown), reverse=True)


def test_unknown_classes_methods_and_clips_are_refused_before_anything_is_written(models, clip, tmp_path):
    inspected, out_dir = models("seed_2d"), tmp_path / "never"
    with pytest.raises(TunerAppError, match=r"^--class: 'dog' is not one of the model's classes: class0, class1, "
                                            r"class2, class3"):
        report.visualize(inspected, clip, out_dir, classes=["dog"])
    with pytest.raises(TunerAppError, match="--class: '4'"):
        report.visualize(inspected, clip, out_dir, classes=["4"])
    with pytest.raises(TunerAppError, match="--saliency: 'occlusion'"):
        report.visualize(inspected, clip, out_dir, method="occlusion")
    with pytest.raises(TunerAppError, match="--input: expected one 16000-sample clip"):
        report.visualize(inspected, clip[:8000], out_dir)
    assert not out_dir.exists()
    assert report.class_index(inspected.class_names, "3") == 3
    assert report.class_index(("yes", "no", "0"), "0") == 2  # a class named like an index is that class


def band_model(bins=20, frames=8, band=(5, 10), n_classes=3):
    """features (bins, frames, 1) -> keep frequency rows band[0]..band[1]-1 -> Flatten -> Dense softmax, with
    fixed weights: only the band can change the output."""
    import keras

    inputs = keras.Input((bins, frames, 1))
    kept = keras.layers.Cropping2D(((band[0], bins - band[1]), (0, 0)))(inputs)
    dense = keras.layers.Dense(n_classes, activation="softmax")
    model = keras.Model(inputs, dense(keras.layers.Flatten()(kept)))
    rng = np.random.default_rng(1)
    dense.set_weights([rng.normal(0, 0.3, ((band[1] - band[0]) * frames, n_classes)), np.zeros(n_classes)])
    return model


@pytest.mark.parametrize("method", saliency.METHODS)
def test_saliency_sits_where_a_hand_made_model_looks(method):
    model, features = band_model(), np.random.default_rng(2).uniform(0.5, 1.5, (20, 8, 1)).astype(np.float32)
    values = saliency.saliency_map(model, features, 1, method)
    assert values.shape == features.shape and values.dtype == np.float32
    outside = np.concatenate([values[:5], values[10:]])
    assert np.abs(outside).max() == 0.0
    assert np.abs(values[5:10]).min() > 1e-5
    assert 5 <= np.unravel_index(np.abs(values).argmax(), values.shape)[0] < 10


def probability(model, features, class_index):
    return float(model(features[None], training=False)[0, class_index])


def test_gradient_x_input_is_the_finite_difference_slope_times_the_input():
    model, features = band_model(), np.random.default_rng(3).uniform(0.5, 1.5, (20, 8, 1)).astype(np.float32)
    values = saliency.saliency_map(model, features, 2, "gradient_x_input")
    step, cell = 1e-2, (7, 3, 0)
    up, down = features.copy(), features.copy()
    up[cell] += step
    down[cell] -= step
    slope = (probability(model, up, 2) - probability(model, down, 2)) / (2 * step)
    assert values[cell] == pytest.approx(slope * features[cell], rel=2e-2, abs=1e-6)


def test_integrated_gradients_add_up_to_the_change_from_the_baseline():
    model, rng = band_model(), np.random.default_rng(4)
    features, baseline = (rng.uniform(-2, 2, (20, 8, 1)).astype(np.float32) for _ in range(2))
    values = saliency.saliency_map(model, features, 0, "integrated_gradients", baseline)
    change = probability(model, features, 0) - probability(model, baseline, 0)
    assert abs(change) > 0.05
    assert values.sum() == pytest.approx(change, abs=3e-4)  # the trapezoid: 3e-5 off; left or right sums 1.5e-3
    assert np.abs(values[:5]).max() == 0.0


def test_class_saliency_starts_integrated_gradients_from_a_silent_clip(models, clip):
    inspected = models("seed_2d")  # a raw log spectrogram: silence is -13.8 everywhere, far from zeros
    features_model = probe.features_model(inspected)
    values = saliency.class_saliency(inspected, features_model, clip, 1, "integrated_gradients")
    assert values.shape == frontend.output_shape(inspected.frontend) and np.isfinite(values).all()
    silence, features = (probe.frontend_features(inspected, waves)[0] for waves in (np.zeros((1, 16000)), clip[None]))
    change = probability(features_model, features, 1) - probability(features_model, silence, 1)
    assert abs(change) > 0.05
    assert values.sum() == pytest.approx(change, rel=0.1)  # from zeros instead, the sum is off by more than 100%


def test_map_rows_spread_over_the_input_frequency_axis_and_columns_over_the_clip():
    axes = frontend.feature_axes(frontend.FrontendConfig(kind="mel", num_mel_bins=40, lower_edge_hertz=20.0))
    input_edges, map_edges = figures.frequency_edges(40, axes), figures.frequency_edges(5, axes)
    assert len(input_edges) == 41 and np.all(np.diff(input_edges) > 0)
    assert np.all((input_edges[:-1] < axes.frequencies) & (axes.frequencies < input_edges[1:]))
    assert map_edges[0] == pytest.approx(input_edges[0]) and map_edges[-1] == pytest.approx(input_edges[-1])
    assert np.all(np.diff(map_edges) > 0) and np.diff(map_edges)[-1] > 3 * np.diff(map_edges)[0]  # mel widens
    np.testing.assert_allclose(figures.map_time_edges(4), [0, 0.25, 0.5, 0.75, 1.0])
    stft = frontend.feature_axes(frontend.FrontendConfig(kind="stft"))
    assert figures.frequency_edges(257, stft)[0] == 0.0 and figures.frequency_edges(257, stft)[-1] > 8000


def map_figure_of(inspected, clip, block):
    outputs = probe.layer_outputs(inspected, clip[None], [probe.FRONTEND, block])
    axes = frontend.feature_axes(inspected.frontend)
    figure = map_figures.feature_maps_figure(block, outputs[probe.FRONTEND][0], outputs[block][0], axes)
    return figure, outputs[block][0]


def test_feature_maps_show_the_strongest_channels_on_labelled_axes(models, clip):
    figure, block_map = map_figure_of(models("bcresnet1"), clip, "b03_broadcast_residual")
    means = block_map.mean(axis=(0, 1))
    titles = [axes.get_title() for axes in figure.axes]
    shown = [int(title.split()[1]) for title in titles if title.startswith("channel ")]
    assert shown == sorted(range(len(means)), key=lambda channel: -means[channel])[:8]
    assert {axes.get_ylabel() for axes in figure.axes} - {""} == {"frequency (Hz)"}  # inner panels: unlabelled
    assert figure.axes[0].get_ylabel() == figure.axes[1].get_ylabel() == "frequency (Hz)"
    assert all(axes.get_xlim() == (0.0, 1.0) for axes in figure.axes)
    assert figure.axes[1].get_ylim()[1] <= 8000 + 1
    mfcc_figure, _ = map_figure_of(models("tcresnet8"), clip, "b01_conv")
    assert mfcc_figure.axes[0].get_ylabel() == "MFCC coefficient" and mfcc_figure.axes[1].get_ylabel() == "channel"


def test_filters_show_the_first_layers_kernels(models):
    waveform_figure = filter_figures.filters_figure(models("seed_1d"))
    titles = [axes.get_title() for axes in waveform_figure.axes]
    assert titles.count("") == 8 and [t for t in titles if t] == [f"kernel {index}" for index in range(8)]
    assert {axes.get_xlabel() for axes in waveform_figure.axes} == {"time (ms)", "frequency (Hz)"}
    tcresnet_figure = filter_figures.filters_figure(models("tcresnet8"))
    assert tcresnet_figure.axes[0].get_ylabel() == "MFCC coefficient"
    assert tcresnet_figure.axes[0].get_ylim()[1] == pytest.approx(39.5)
    dscnn = models("dscnn_s")
    depthwise = filter_figures.depthwise_figure(dscnn)
    kernel = dscnn.model.get_layer("b02_depthwise_separable").get_weights()[0]
    images = [axes.get_images()[0] for axes in depthwise.axes if axes.get_images()]
    assert len(images) == 32 and "first 32 of 64 channels" in depthwise.texts[0].get_text()
    np.testing.assert_array_equal(images[5].get_array(), kernel[:, :, 5, 0])
    assert filter_figures.depthwise_figure(models("seed_2d")) is None


def test_sizes_say_how_much_sits_in_the_fc_layers(models):
    walk = models("seed_2d").walk
    dense = sum(row.params for row in walk.rows if row.kind == "dense")
    assert filter_figures.fc_share(walk) == dense / walk.params_total and dense > 0.9 * walk.params_total
    figure = filter_figures.sizes_figure(walk, "cnn2d")
    share = f"{100 * dense / walk.params_total:.1f}"
    assert figure.texts[0].get_text() == f"cnn2d: FC layers hold {share}% of {walk.params_total:,} params"
    params_axes = figure.axes[0]
    assert [bar.get_width() for bar in params_axes.patches] == [row.params for row in walk.rows]
    assert [bar.get_facecolor() == params_axes.patches[-1].get_facecolor() for bar in params_axes.patches] == [
        row.kind == "dense" for row in walk.rows]
