import logging

import numpy as np
import pytest
import tensorflow as tf
from conftest import tone, write_wav

from tuner_app.data import cache
from tuner_app.errors import TunerAppError
from tuner_app.features import augment, augment_config
from tuner_app.features.dataset import make_dataset


@pytest.fixture
def files(tmp_path):
    # Half a second of tone, then silence: a steady tone filling the clip leaves some STFT rows flat.
    rates = [8000 * (1 + i % 2) for i in range(5)]
    good = [write_wav(tmp_path / f"g{i}.wav", tone(rate=rate, freq=300 + 100 * i), rate=rate) for i, rate in enumerate(rates)]
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF0000WAVEfmt garbage")
    empty = write_wav(tmp_path / "empty.wav", np.zeros(0))
    return [str(p) for p in good[:2] + [corrupt] + good[2:] + [empty]]


def test_bad_files_are_skipped_counted_and_named_in_one_warning(files, caplog):
    with caplog.at_level(logging.WARNING, logger="tuner_app.data.cache"):
        decoded = cache.decode_clips(files, list(range(7)))
    assert decoded.waveforms.shape == (5, 16000)
    assert decoded.labels.tolist() == [0, 1, 3, 4, 5]
    assert decoded.skipped == (files[2], files[6])
    assert len(caplog.records) == 1 and "2 unreadable" in caplog.text and "corrupt.wav" in caplog.text


def test_strict_turns_skips_into_an_error(files):
    with pytest.raises(TunerAppError, match="corrupt.wav"):
        cache.decode_clips(files, list(range(7)), strict=True)


def test_cache_file_is_reused(files, tmp_path):
    cache_file = tmp_path / "cache" / "decoded.npz"
    first = cache.load_cached(cache_file, files, list(range(7)))
    again = cache.load_cached(cache_file, [], [])  # a hit never decodes, so the file list is not needed
    np.testing.assert_array_equal(first.waveforms, again.waveforms)
    assert again.paths == first.paths and again.skipped == first.skipped


def test_dataset_batches_augmented_waveforms(files):
    decoded = cache.decode_clips(files, list(range(7)))
    augment = augment_config.AugmentConfig(time_shift_ms=100, noise_probability=1.0, freq_mask=10, time_mask=10)
    noise = np.random.default_rng(0).normal(0, 0.1, 40000).astype(np.float32)
    dataset = make_dataset(decoded, batch_size=2, training=True, augment=augment, noise=noise, seed=1)
    batches = list(dataset.as_numpy_iterator())
    # Waveforms, whatever the front-end: each model computes its own features as its first layer.
    assert [b[0].shape for b in batches] == [(2, 16000), (2, 16000), (1, 16000)]
    assert sorted(np.concatenate([b[1] for b in batches]).tolist()) == [0, 1, 3, 4, 5]
    assert not any(np.allclose(batch[0], decoded.waveforms[: len(batch[0])]) for batch in batches)  # noise added
    plain = next(make_dataset(decoded, 5).as_numpy_iterator())
    np.testing.assert_array_equal(plain[0], decoded.waveforms)


def test_bad_augment_key_is_named():
    with pytest.raises(TunerAppError, match="augment.shift: unknown key"):
        augment_config.AugmentConfig.from_dict({"shift": 3})


def test_band_limit_removes_what_lies_above_the_cutoff():
    t = np.arange(16000) / 16000
    low, high = np.sin(2 * np.pi * 1000 * t), np.sin(2 * np.pi * 6000 * t)
    limited = augment.band_limit(tf.constant(low + high, tf.float32), 4000.0).numpy()
    np.testing.assert_allclose(limited, low, atol=1e-4)


def test_lowpass_augmentation_band_limits_some_training_clips():
    clips_count = 500
    t = np.arange(16000) / 16000
    waveforms = np.tile(np.sin(2 * np.pi * 7000 * t).astype(np.float32), (clips_count, 1))
    labels = np.zeros(clips_count, np.int64)
    clips = cache.DecodedClips(waveforms, labels, tuple(f"{i}.wav" for i in range(clips_count)))
    augment = augment_config.AugmentConfig(lowpass_probability=0.5, lowpass_min_hz=3000)
    dataset = make_dataset(clips, clips_count, training=True, augment=augment, seed=0)
    energy = np.sqrt(np.mean(next(dataset.as_numpy_iterator())[0] ** 2, axis=1))
    assert np.all((energy < 0.01) | (energy > 0.69))  # a 7 kHz tone is removed whole or kept whole
    # It is removed with p = 0.5 x P(cut-off in [3, 8) kHz is below 7 kHz) = 0.5 x 0.8 = 0.4. The parallel
    # map draws in any order, so count: Binomial(500, 0.4) lies outside [0.25, 0.55] with p = 5.6e-12.
    assert 0.25 <= np.mean(energy < 0.01) <= 0.55


def test_lowpass_settings_are_checked():
    with pytest.raises(TunerAppError, match="augment: need 0 <= lowpass_probability <= 1 and 0 < lowpass_min_hz <= 8000"):
        augment_config.AugmentConfig.from_dict({"lowpass_probability": 0.5, "lowpass_min_hz": 9000})


def test_cache_keeps_int16_memory_mapped_and_reads_float_per_batch(files, tmp_path):
    cache_file = tmp_path / "cache" / "decoded.npz"
    cached = cache.load_cached(cache_file, files, list(range(7)))
    in_memory = cache.decode_clips(files, list(range(7)))
    assert isinstance(cached.waveforms, np.memmap) and cached.waveforms.dtype == np.int16
    assert sorted(path.name for path in cache_file.parent.iterdir()) == ["decoded.npy", "decoded.npz"]
    np.testing.assert_allclose(cached.batch(slice(None)), in_memory.waveforms, atol=0.5 / 32768)
    batch = cached.batch(np.array([3, 0]))
    assert batch.dtype == np.float32 and batch.shape == (2, 16000)
    waveforms, labels = next(make_dataset(cached, 5).as_numpy_iterator())
    np.testing.assert_allclose(waveforms, in_memory.waveforms, atol=0.5 / 32768)
    assert labels.tolist() == [0, 1, 3, 4, 5]


def test_a_cache_of_the_old_float32_layout_is_decoded_again(files, tmp_path):
    cache_file = tmp_path / "decoded.npz"
    np.savez(cache_file, waveforms=np.ones([1, 16000], np.float32), labels=np.array([9]), paths=np.array(["x"]),
             skipped=np.array([], str), skip_reasons=np.array([], str))
    assert cache.load_cached(cache_file, files, list(range(7))).labels.tolist() == [0, 1, 3, 4, 5]


def test_training_shuffles_indices_reproducibly_and_keeps_each_label_with_its_clip():
    count = 50
    rows = (np.arange(count, dtype=np.int16)[:, None] * np.ones([1, 16000], np.int16))
    clips = cache.DecodedClips(rows, np.arange(count, dtype=np.int64), tuple(f"{i}.wav" for i in range(count)))
    dataset = make_dataset(clips, 8, training=True, seed=3)
    epochs = [[batch for batch in dataset.as_numpy_iterator()] for _ in range(2)]
    orders = [np.concatenate([labels for _, labels in epoch]) for epoch in epochs]
    assert sorted(orders[0].tolist()) == list(range(count)) and orders[0].tolist() != list(range(count))
    assert orders[0].tolist() != orders[1].tolist()  # reshuffled each epoch
    again = np.concatenate([labels for _, labels in make_dataset(clips, 8, training=True, seed=3)])
    np.testing.assert_array_equal(again, orders[0])  # same seed, same order
    for waveforms, labels in epochs[0]:
        np.testing.assert_array_equal(waveforms, (labels[:, None] / 32768.0) * np.ones([1, 16000]))
