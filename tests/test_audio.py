import struct

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_io as tfio
from conftest import tone, write_wav

from tuner_app.data import audio
from tuner_app.errors import TunerAppError


def dominant_hz(clip):
    spectrum = np.abs(np.fft.rfft(clip))
    return np.argmax(spectrum) * 16000 / len(clip)


@pytest.mark.parametrize("bits,float_format", [(8, False), (16, False), (24, False), (32, False), (32, True), (64, True)])
def test_every_wav_sample_format_decodes_to_the_same_clip(tmp_path, bits, float_format):
    path = write_wav(tmp_path / "a.wav", tone(), bits=bits, float_format=float_format)
    clip = audio.read(path)
    assert clip.shape == (16000,) and clip.dtype == np.float32
    tolerance = 1 / 100 if bits == 8 else 1e-4
    np.testing.assert_allclose(clip[:8000], tone().astype(np.float32), atol=tolerance)
    assert np.all(clip[8000:] == 0)


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000])
def test_any_rate_is_resampled_to_16k(tmp_path, rate):
    path = write_wav(tmp_path / "a.wav", tone(seconds=1.0, rate=rate, freq=500), rate=rate)
    clip = audio.read(path)
    assert clip.shape == (16000,)
    assert dominant_hz(clip) == pytest.approx(500, abs=2)
    assert np.sqrt(np.mean(clip[1000:15000] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


def test_stereo_is_mixed_down_and_long_clips_cropped(tmp_path):
    left, right = tone(seconds=2.0, rate=44100), np.zeros(88200)
    path = write_wav(tmp_path / "s.wav", np.stack([left, right], 1), rate=44100)
    info = audio.describe(path)
    assert (info.format, info.rate, info.channels, info.frames) == ("wav", 44100, 2, 88200)
    clip = audio.read(path)
    assert clip.shape == (16000,)
    assert np.abs(clip[1000:]).max() == pytest.approx(0.25, abs=0.01)


def test_flac_and_ogg_decode(tmp_path):
    samples = tf.constant((tone(rate=8000)[:, None] * 32767).astype(np.int16))
    (tmp_path / "a.flac").write_bytes(tfio.audio.encode_flac(samples, 8000).numpy())
    stereo = tf.constant(np.stack([tone(rate=44100)] * 2, 1).astype(np.float32))
    (tmp_path / "a.ogg").write_bytes(tfio.audio.encode_vorbis(stereo, 44100).numpy())
    deep = tf.constant((tone(rate=22050)[:, None] * 2**23).astype(np.int32))
    (tmp_path / "a24.flac").write_bytes(tfio.audio.encode_flac(deep, 22050).numpy())
    assert audio.describe(tmp_path / "a.flac") == audio.AudioInfo("flac", 8000, 1, 4000)
    assert audio.describe(tmp_path / "a24.flac") == audio.AudioInfo("flac", 22050, 1, 11025)
    assert np.abs(audio.read(tmp_path / "a24.flac")).max() == pytest.approx(0.5, abs=0.01)
    assert audio.describe(tmp_path / "a.ogg").rate == 44100
    for name in ("a.flac", "a.ogg"):
        assert dominant_hz(audio.read(tmp_path / name)[:8000]) == pytest.approx(440, abs=3)


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "not WAV, FLAC, Ogg Vorbis or MP3"),
        (b"text, not audio", "not WAV, FLAC, Ogg Vorbis or MP3"),
        (b"ID3\x03\x00 a broken mp3", "unreadable audio"),
        (b"RIFF\x00\x00\x00\x00WAVEjunk", "WAV has no fmt chunk"),
    ],
)
def test_corrupt_files_get_a_message_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(TunerAppError, match=message) as err:
        audio.read(path)
    assert str(path) in str(err.value)


def test_an_unsupported_sample_format_is_named_in_plain_words(tmp_path):
    path = write_wav(tmp_path / "float16.wav", tone(), bits=16, float_format=True)  # IEEE float needs 32 or 64 bits
    with pytest.raises(TunerAppError) as err:
        audio.read(path)
    assert str(err.value) == f"{path}: unreadable audio (unsupported WAV sample format)"  # no TensorFlow leftovers


def test_empty_wav_and_missing_file(tmp_path):
    empty = write_wav(tmp_path / "empty.wav", np.zeros(0))
    with pytest.raises(TunerAppError, match="empty audio"):
        audio.read(empty)
    with pytest.raises(TunerAppError, match="nope.wav: cannot read"):
        audio.read(tmp_path / "nope.wav")


def test_truncated_wav_keeps_the_samples_present(tmp_path):
    path = write_wav(tmp_path / "t.wav", tone())
    path.write_bytes(path.read_bytes()[:-1001])  # 14999 data bytes: 7499 samples and an odd byte
    clip = audio.read(path)
    np.testing.assert_allclose(clip[:7499], tone()[:7499], atol=1e-4)
    assert np.count_nonzero(clip[7499:]) == 0


def test_mp3_decodes_when_an_encoder_exists_to_make_one(tmp_path):
    samples = tf.constant(tone(seconds=1.0, rate=22050)[:, None].astype(np.float32))
    try:
        encoded = tfio.audio.encode_mp3(samples, 22050).numpy()
    except tf.errors.OpError:
        pytest.skip("no libmp3lame on this machine to make an MP3 (decoding needs none)")
    (tmp_path / "a.mp3").write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x04tag!" + encoded)
    assert audio.describe(tmp_path / "a.mp3").rate == 22050
    assert dominant_hz(audio.read(tmp_path / "a.mp3")) == pytest.approx(440, abs=2)


@pytest.mark.parametrize("contents", [b"RIFF\x02\x00\x00\x00WA", b"RIFF\xff\xfe\x00\x00WA"])
def test_a_riff_header_cut_short_is_named_not_garbled(tmp_path, contents):
    # The chunk walk read past the end of such a file: the error was TensorFlow's raw substr message.
    path = tmp_path / "short.wav"
    path.write_bytes(contents)
    with pytest.raises(TunerAppError, match=r"short.wav: unreadable audio \(WAV has no fmt chunk\)$"):
        audio.read(path)


def test_a_long_recording_reads_whole_at_16k(tmp_path):
    recording = audio.read_recording(write_wav(tmp_path / "noise.wav", tone(seconds=2.5, rate=8000), rate=8000))
    assert recording.shape == (40000,) and np.abs(recording).max() == pytest.approx(0.5, abs=0.02)
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x02\x00\x00\x00WA")
    with pytest.raises(TunerAppError, match="bad.wav: unreadable audio"):
        audio.read_recording(tmp_path / "bad.wav")


# Header field -> (offset in conftest.write_wav's 44-byte header, struct format)
HEADER = {"fmt_size": (16, "<I"), "code": (20, "<H"), "channels": (22, "<H"), "rate": (24, "<I"),
          "byte_rate": (28, "<I"), "block_align": (32, "<H"), "bits": (34, "<H")}


def _with_header(path, **fields):
    """conftest.write_wav's file at `path` with header fields replaced."""
    data = bytearray(path.read_bytes())
    for name, value in fields.items():
        struct.pack_into(HEADER[name][1], data, HEADER[name][0], value)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("fields,message", [
    ({"block_align": 3}, "block_align 3 does not match 2 channels of 16 bits"),
    ({"byte_rate": 12345}, "byte_rate 12345 does not match 16000 Hz of 4-byte frames"),
    ({"channels": 0}, "channels 0, not 1 to 64"),
    ({"channels": 65535}, "channels 65535, not 1 to 64"),
    ({"rate": 400000, "byte_rate": 1600000}, "sample rate 400000 Hz, not 1000 to 384000"),
    ({"rate": 1, "byte_rate": 4}, "sample rate 1 Hz, not 1000 to 384000"),
    ({"fmt_size": 4}, "fmt chunk of 4 bytes, fewer than the 16 its fields take"),
    ({"code": 0xFFFE}, "fmt chunk of 16 bytes, fewer than the 40 its fields take"),  # no room for the real code
])
def test_every_header_field_is_checked_before_decoding_and_named(tmp_path, fields, message):
    # Before, each was decoded anyway (channels 0 as 1) or cut to nothing (65535 channels); a rate sizes the
    # resampler's FFT (test_fuzz_wav.py holds a 4 GHz one, which asked for 20 GB).
    path = _with_header(write_wav(tmp_path / "clip.wav", np.stack([tone(0.1)] * 2, 1)), **fields)
    with pytest.raises(TunerAppError) as err:
        audio.read(path)
    assert str(err.value) == f"{path}: unreadable audio (WAV header: {message})"


def test_rates_and_channels_decode_up_to_their_limits_and_no_further(tmp_path):
    for rate, channels in ((1000, 1), (384000, 1), (16000, 64)):
        path = write_wav(tmp_path / f"{rate}_{channels}.wav", np.stack([tone(0.05, rate)] * channels, 1), rate)
        assert np.abs(audio.read(path)).max() > 0.4
    for rate, channels in ((999, 1), (384001, 1), (16000, 65)):
        path = write_wav(tmp_path / f"{rate}_{channels}.wav", np.stack([tone(0.05, rate)] * channels, 1), rate)
        with pytest.raises(TunerAppError, match="WAV header: (sample rate|channels) "):
            audio.read(path)


def _silent_8bit_wav(path, seconds: int, rate: int = 1000):
    """8-bit mono silence, header and samples straight from bytes."""
    raw = b"\x80" * (seconds * rate)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate, 1, 8)
    body = b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(raw)) + raw
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def test_a_file_of_more_than_an_hour_is_refused(tmp_path):
    assert audio.read(_silent_8bit_wav(tmp_path / "hour.wav", 3600)).shape == (16000,)
    with pytest.raises(TunerAppError) as err:
        audio.read_recording(_silent_8bit_wav(tmp_path / "longer.wav", 3601))
    assert str(err.value).endswith("unreadable audio (WAV data chunk: 3601 s of audio, more than the 3600 s one file "
                                   "may hold)")


def test_a_flac_rate_out_of_range_is_refused_before_decoding(tmp_path):
    samples = tf.constant((tone(rate=8000)[:, None] * 32767).astype(np.int16))
    flac = bytearray(tfio.audio.encode_flac(samples, 8000).numpy())
    flac[18], flac[19], flac[20] = 0xFF, 0xFF, (flac[20] & 0x0F) | 0xF0  # STREAMINFO's 20-bit rate: 1,048,575 Hz
    (tmp_path / "fast.flac").write_bytes(bytes(flac))
    with pytest.raises(TunerAppError, match=r"fast.flac: unreadable audio \(FLAC header: sample rate 1048575 Hz, "):
        audio.read(tmp_path / "fast.flac")
