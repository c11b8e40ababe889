"""An export runs outside tuner-app: the SavedModel in plain TensorFlow (no tensorflow-io), the .tflite
files in the standalone LiteRT interpreter (no TensorFlow); and the core-TF resampler both rely on."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_io as tfio
from conftest import tone, tone_clips, write_wav

from tuner_app.data import audio, cache, corpus
from tuner_app.errors import TunerAppError
from tuner_app.device import tflite
from tuner_app.serving import export

SUBPROCESS_TIMEOUT = 300


@pytest.fixture(scope="module")
def exported(tiny_trial_dir, tmp_path_factory):
    return export.export_trial(tiny_trial_dir, tmp_path_factory.mktemp("portable") / "model", quantize="int8",
                               representative=tone_clips(1, 2).waveforms)


@pytest.fixture(scope="module")
def keras_probabilities(tiny_trial_dir):
    """The trained Keras model on float32 [n, 16000] 16 kHz waveforms, with no SavedModel in between."""
    trial = export.load_trial(tiny_trial_dir)
    return lambda waveforms: trial.model(np.asarray(waveforms, np.float32), training=False).numpy()


def _run_alone(script: str, cwd) -> None:
    """Run a Python script in a fresh interpreter, from `cwd` (outside the repository); fail with its output."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=cwd, capture_output=True,
                          text=True, timeout=SUBPROCESS_TIMEOUT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                          check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


PLAIN_TENSORFLOW = """
    import sys
    import numpy as np
    import tensorflow as tf

    model = tf.saved_model.load("{model}")
    assert "tensorflow_io" not in sys.modules and "tuner_app" not in sys.modules, sorted(sys.modules)
    files = [open(path, "rb").read() for path in {files!r}]
    waveform = model.signatures["serving_default"](waveform=tf.constant(np.load("{waveforms}")))
    from_bytes = model.signatures["serve_bytes"](audio=tf.constant(files))
    try:
        model.signatures["serve_bytes"](audio=tf.constant([open("{flac}", "rb").read()]))
        not_wav = "no error"
    except tf.errors.InvalidArgumentError as err:
        not_wav = err.message
    np.savez("{out}", waveform=waveform["probabilities"].numpy(), from_bytes=from_bytes["probabilities"].numpy(),
             class_name=from_bytes["class_name"].numpy().astype("S"), not_wav=np.array(not_wav))
"""


def test_the_saved_model_runs_in_plain_tensorflow(exported, keras_probabilities, tmp_path):
    clips = tone_clips(7)
    waveforms = clips.waveforms[:4]
    files = [write_wav(tmp_path / f"{rate}_{i}.wav", tone(1.0, rate, 200 + 150 * label, 0.3), rate=rate)
             for rate in (8000, 16000) for i, label in enumerate(clips.labels[:3])]
    np.save(tmp_path / "waveforms.npy", waveforms)
    flac = tmp_path / "a.flac"
    flac.write_bytes(tfio.audio.encode_flac(tf.constant((tone()[:, None] * 32767).astype(np.int16)), 16000).numpy())
    _run_alone(PLAIN_TENSORFLOW.format(model=exported.path, files=[str(f) for f in files], flac=flac,
                                       waveforms=tmp_path / "waveforms.npy", out=tmp_path / "out.npz"), tmp_path)
    served = np.load(tmp_path / "out.npz")
    np.testing.assert_allclose(served["waveform"], keras_probabilities(waveforms), atol=1e-5)
    # serve_bytes decodes as training does: the Keras model on the clips the training decoder makes
    decoded = np.stack([audio.read(path) for path in files])
    np.testing.assert_allclose(served["from_bytes"], keras_probabilities(decoded), atol=1e-4)
    names = json.loads((exported.path / export.METADATA).read_text())["class_names"]
    assert [name.decode() for name in served["class_name"]] == [names[i] for i in served["from_bytes"].argmax(1)]
    assert "not WAV audio" in str(served["not_wav"]) and "any_format" in str(served["not_wav"])


def test_the_any_format_saved_model_decodes_flac(exported, keras_probabilities, tmp_path):
    samples = (tone(1.0, 22050, 650, 0.3)[:, None] * 32767).astype(np.int16)
    flac = tmp_path / "a.flac"
    flac.write_bytes(tfio.audio.encode_flac(tf.constant(samples), 22050).numpy())
    any_format = tf.saved_model.load(str(exported.path / export.ANY_FORMAT))
    served = any_format.signatures["serving_default"](audio=tf.constant([flac.read_bytes()]))
    np.testing.assert_allclose(served["probabilities"].numpy(), keras_probabilities(audio.read(flac)[None]), atol=1e-4)
    signatures = json.loads((exported.path / export.METADATA).read_text())["signatures"]
    assert set(signatures) == {"serving_default", "serve_bytes", f"{export.ANY_FORMAT}/serving_default"}
    assert "WAV" in signatures["serve_bytes"] and "tensorflow_io" in signatures[f"{export.ANY_FORMAT}/serving_default"]


LITERT = """
    import sys
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    assert "tensorflow" not in sys.modules, sorted(name for name in sys.modules if "tensorflow" in name)
    waveforms = np.load("{waveforms}")
    outputs = {{}}
    for kind, path in {models!r}.items():
        runner = Interpreter(model_path=path).get_signature_runner()
        rows = []
        for clip in waveforms:
            result = runner(waveform=clip[np.newaxis])
            rows.append(next(value for value in result.values() if value.dtype == np.float32)[0])
        outputs[kind] = np.stack(rows)
    assert "tensorflow" not in sys.modules
    np.savez("{out}", **outputs)
"""


def test_the_tflite_files_run_in_litert_without_tensorflow(exported, tmp_path):
    waveforms = tone_clips(8).waveforms[:5]
    np.save(tmp_path / "waveforms.npy", waveforms)
    assert set(exported.tflite) == {"float", "int8", "int8_features"}  # the last takes features: test_int8_features
    models = {kind: str(exported.tflite[kind]["path"]) for kind in ("float", "int8")}
    assert not any(entry["ops"].get("flex") for entry in exported.tflite.values())  # LiteRT has no TF kernels
    _run_alone(LITERT.format(waveforms=tmp_path / "waveforms.npy", models=models, out=tmp_path / "out.npz"), tmp_path)
    litert = np.load(tmp_path / "out.npz")
    for kind, path in models.items():
        with open(path, "rb") as handle:
            expected = tflite.tflite_probabilities(handle.read(), waveforms)
        tolerance = 1e-5 if kind == "float" else 1e-6
        np.testing.assert_allclose(litert[kind], expected, atol=tolerance, err_msg=kind)
        np.testing.assert_array_equal(litert[kind].argmax(1), expected.argmax(1))


def test_the_private_op_listing_tflite_ops_relies_on_still_works(exported):
    # No public TensorFlow API lists a .tflite's ops (tf.lite.experimental.Analyzer only prints text), so
    # tflite.tflite_ops calls tf.lite.Interpreter._get_ops_details: this fails loudly if that changes.
    assert hasattr(tf.lite.Interpreter, "_get_ops_details"), "tf.lite.Interpreter._get_ops_details is gone"
    model = exported.tflite["float"]["path"].read_bytes()
    details = tf.lite.Interpreter(model_content=model)._get_ops_details()
    assert details and all({"op_name", "outputs"} <= set(op) for op in details), \
        f"tf.lite.Interpreter._get_ops_details changed its entries: {details[:1]}"
    assert "CONV_2D" in tflite.tflite_ops(model)["float32"]


def _tone_16k(frequency, frames, amplitude=0.5):
    return amplitude * np.sin(2 * np.pi * frequency * np.arange(frames) / 16000)


@pytest.mark.parametrize("rate", [8000, 11025, 44100, 48000, 12345])
def test_a_resampled_tone_keeps_its_frequency_amplitude_and_timing(rate):
    resampled = audio.to_mono_16k(tone(1.0, rate, 1000)[:, None].astype(np.float32), rate).numpy()
    assert resampled.shape == (16000,)
    inner = slice(200, -200)  # the recording starts and ends abruptly: the edges ring
    np.testing.assert_allclose(resampled[inner], _tone_16k(1000, 16000)[inner], atol=1e-4)


def test_resampling_adds_no_delay():
    click = np.zeros([8000, 1], np.float32)
    click[4000] = 1.0
    resampled = audio.to_mono_16k(click, 8000).numpy()
    assert np.argmax(resampled) == 8000  # input sample 4000 is output sample 8000
    np.testing.assert_allclose(resampled[8001:8100], resampled[7901:8000][::-1], atol=1e-6)  # zero phase


@pytest.mark.parametrize("frequency", [8100, 9000, 12000, 20000])
def test_downsampling_removes_what_16k_cannot_hold(frequency):
    resampled = audio.to_mono_16k(tone(1.0, 44100, frequency)[:, None].astype(np.float32), 44100).numpy()
    # The tone's RMS is 0.35: -80 dB at least, away from the edges where it starts and stops abruptly
    assert np.sqrt(np.mean(resampled[200:-200] ** 2)) < 3.5e-5


def test_the_passband_is_kept():
    resampled = audio.to_mono_16k(tone(1.0, 44100, 6500)[:, None].astype(np.float32), 44100).numpy()
    np.testing.assert_allclose(resampled[200:-200], _tone_16k(6500, 16000)[200:-200], atol=1e-3)


@pytest.mark.parametrize("frames,rate", [(1, 44100), (7, 11025), (100, 8000), (12345, 44101), (999, 22050), (4, 48000)])
def test_the_resampled_length_is_the_output_instants_inside_the_recording(frames, rate):
    resampled = audio.to_mono_16k(np.ones([frames, 1], np.float32), rate).numpy()
    assert len(resampled) == -(-frames * 16000 // rate)  # ceil(frames * 16000 / rate)


def test_a_limit_gives_the_start_of_the_full_resample():
    noise = np.random.default_rng(0).standard_normal([3 * 22050, 1]).astype(np.float32) * 0.1
    full = audio.to_mono_16k(noise, 22050).numpy()
    limited = audio.to_mono_16k(noise, 22050, limit=16000).numpy()
    assert full.shape == (48000,) and limited.shape == (16000,)
    np.testing.assert_allclose(limited, full[:16000], atol=1e-5)


def test_a_wav_with_a_zero_sample_rate_is_named(tmp_path):
    path = write_wav(tmp_path / "zero.wav", tone(), rate=0)
    with pytest.raises(TunerAppError, match=r"zero.wav: unreadable audio \(WAV header: sample rate 0 Hz, not 1000 "):
        audio.read(path)


def test_the_decoded_cache_key_names_the_decoder_version(tmp_path, monkeypatch):
    write_wav(tmp_path / "yes" / "a_nohash_0.wav", tone())
    found = corpus.scan(tmp_path, ["yes"])
    key = cache._cache_key(found)
    monkeypatch.setattr(audio, "DECODER_VERSION", -1, raising=False)  # waveforms of another decoder
    assert cache._cache_key(found) != key
