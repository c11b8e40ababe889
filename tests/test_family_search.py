"""A smoke search per family (seed, DS-CNN, TC-ResNet, BC-ResNet, and a space over families), each trial's model
taking the raw waveform; its export serves the Keras model's probabilities, front-end inside, in the SavedModel and
in both waveform .tflite files (float, int8), and an int8 features-in network is written."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import yaml

from conftest import SMOKE_SPACE, tone_clips, tone_splits
from tuner_app.data.corpus import SEED_WORDS
from tuner_app.model.space import search_space
from tuner_app.search import run as search_run
from tuner_app.device import tflite
from tuner_app.serving import export

MEL40 = {"kind": "mel", "num_mel_bins": 40, "frame_length": 480, "frame_step": 160, "normalize": "clip"}
MFCC10 = {"kind": "mfcc", "num_mel_bins": 40, "num_mfccs": 10, "frame_length": 640, "frame_step": 320,
          "fft_length": 1024, "normalize": "clip"}
TINY = {
    "dscnn": ({"dscnn_filters": 8, "dscnn_blocks": 1}, MFCC10),
    "tcresnet": ({"tcresnet_width": 0.25}, MEL40),
    "bcresnet": ({"bcresnet_width": 4}, MEL40),
}
ONE_EPOCH = {"epochs": 1, "batch_size": 8, "patience": 1, "seed": 0}


def _fixed(values):
    return {name: {"type": "fixed", "value": value} for name, value in values.items()}


def _space(family):
    if family == "seed":
        document = yaml.safe_load(Path(SMOKE_SPACE).read_text())
    else:
        values, frontend = TINY[family]
        document = {"model": family, "frontend": frontend, "hyperparameters": _fixed(values)}
    document.update(tuner={"name": "random", "max_trials": 1}, training=ONE_EPOCH)
    document["augment"] = {"freq_mask": 4, "time_mask": 4} if family != "seed" else {}
    return search_space.from_dict(document, f"{family}.yaml")


def _completed_trial_dir(tuner) -> Path:
    trial = next(t for t in tuner.oracle.trials.values() if t.status == "COMPLETED")
    return Path(tuner.get_trial_dir(trial.trial_id))


@pytest.mark.parametrize("family", ["seed", "dscnn", "tcresnet", "bcresnet"])
def test_each_family_searches_exports_and_predicts(family, tmp_path):
    space = _space(family)
    tuner = search_run.run_search(space, tone_splits(), tmp_path / "runs", class_names=list(SEED_WORDS))
    trial_dir = _completed_trial_dir(tuner)
    result = export.export_trial(trial_dir, tmp_path / "model", quantize="int8",
                                 representative=tone_clips(1).waveforms[:8])
    assert result.metadata["model"] == ("cnn2d" if family == "seed" else family)
    assert result.metadata["params"] == tuner.sizes(result.metadata["hyperparameters"])["params"]
    waveforms = tone_clips(7).waveforms[:5]
    keras_probabilities = export.load_trial(trial_dir).model(waveforms, training=False).numpy()
    served = tf.saved_model.load(str(result.path)).signatures["serving_default"](waveform=tf.constant(waveforms))
    assert served["probabilities"].shape == (5, len(SEED_WORDS))
    np.testing.assert_allclose(served["probabilities"].numpy(), keras_probabilities, atol=1e-5)
    _assert_tflite_files_serve(result, waveforms, keras_probabilities)


def _assert_tflite_files_serve(result, waveforms, keras_probabilities):
    """Both waveform .tflite files carry serving_default (BC-ResNet's had no signature), and the float one serves
    the Keras probabilities; the int8 one is only checked to run (one epoch's scores are too flat to rank). The
    features-in network is int8 through and through."""
    assert "post-training int8 of the CNN" in result.quantization  # not the dynamic-range fallback
    for kind in ("float", "int8"):
        probabilities = tflite.tflite_probabilities(Path(result.tflite[kind]["path"]).read_bytes(), waveforms)
        assert probabilities.shape == keras_probabilities.shape, kind
    assert set(result.tflite["int8_features"]["ops"]) == {"int8"}
    float_probabilities = tflite.tflite_probabilities(Path(result.tflite["float"]["path"]).read_bytes(), waveforms)
    np.testing.assert_allclose(float_probabilities, keras_probabilities, atol=1e-4)


def test_a_search_over_families_keeps_each_trials_values_to_its_family(tmp_path):
    document = {
        "model": "family", "frontend": MEL40, "frontends": {"mel40": {}, "mfcc10": MFCC10},
        "hyperparameters": {
            "family": {"type": "choice", "values": ["dscnn", "bcresnet"]},
            "frontend": {"type": "choice", "values": ["mel40", "mfcc10"]},
            **_fixed({**TINY["dscnn"][0], **TINY["bcresnet"][0]}),
        },
        "tuner": {"name": "random", "max_trials": 3, "seed": 1}, "training": ONE_EPOCH,
    }
    space = search_space.from_dict(document, "families.yaml")
    tuner = search_run.run_search(space, tone_splits(), tmp_path / "runs", class_names=list(SEED_WORDS))
    trials = [trial for trial in tuner.oracle.trials.values() if trial.status == "COMPLETED"]
    assert len(trials) == 3
    for trial in trials:
        values = trial.hyperparameters.values
        other = {"dscnn": "bcresnet_", "bcresnet": "dscnn_"}[values["family"]]
        assert not any(name.startswith(other) for name in values), values
        # BC-ResNet cannot split 10 MFCCs into 5 sub-bands: the oracle never proposes it.
        assert (values["family"], values["frontend"]) != ("bcresnet", "mfcc10")
    rejected = [entry["hyperparameters"] for entry in tuner.rejected]
    assert all((values["family"], values["frontend"]) == ("bcresnet", "mfcc10") for values in rejected)
