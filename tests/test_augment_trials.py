"""Augment keys as hyperparameters: a trial's value overrides the space's `augment:` for that trial, in its
model (VTLP, masks, mixup's loss) and in its own map of the shared un-augmented training batches; where none
is searched the one augmented dataset serves every trial as before. Bad values are refused in one line naming
the key, when the space is read or before any trial."""

import dataclasses

import numpy as np
import pytest

from conftest import SMOKE_SPACE, tone_clips, tone_splits
from tuner_app.errors import TunerAppError
from tuner_app.features.augment_config import AugmentConfig
from tuner_app.features.dataset import make_dataset
from tuner_app.model.architecture import build
from tuner_app.model.architecture.configured import frontend_config
from tuner_app.model.space import search_space
from tuner_app.model.space.configurations import configurations
from tuner_app.search import run as search_run

FIXED_SMOKE = {"conv_layers": {"type": "fixed", "value": 1}, "fc_layers": {"type": "fixed", "value": 0}}


def smoke_space(augment=None, **hyperparameters) -> search_space.SearchSpace:
    """search_spaces/smoke.yaml (one configuration) with an `augment:` mapping and extra hyperparameters."""
    document = search_space.bounded_yaml.read(SMOKE_SPACE)
    document["augment"] = augment or {}
    document["hyperparameters"] = {**document["hyperparameters"], **FIXED_SMOKE, **hyperparameters}
    return search_space.from_dict(document, "smoke.yaml")


def choice(*values):
    return {"type": "choice", "values": list(values)}


def configuration(space: search_space.SearchSpace, **chosen) -> dict:
    """The space's configuration with these values."""
    return next(values for values in configurations(space) if all(values[k] == v for k, v in chosen.items()))


def test_a_trial_value_overrides_the_space_augment_for_that_trial_only():
    space = smoke_space({"vtlp_alpha": 0.05, "freq_mask": 3}, vtlp_alpha=choice(0.0, 0.1), speed_max=choice(1.1))
    trial = build.trial_augment(space, {"vtlp_alpha": 0.1, "speed_max": 1.1, "conv_layers": 1})
    assert (trial.vtlp_alpha, trial.speed_max, trial.freq_mask) == (0.1, 1.1, 3)
    assert build.trial_augment(space, {"vtlp_alpha": 0.0}).vtlp_alpha == 0.0
    assert space.augment.vtlp_alpha == 0.05  # the space itself is left as it was
    assert build.trial_augment(space, {"conv_layers": 1}) is space.augment


def test_the_trial_model_holds_the_trials_vtlp_and_mixup_loss():
    space = smoke_space(vtlp_alpha=choice(0.0, 0.2), mixup_alpha=choice(0.0, 0.3))
    warped = build.build_model(space, configuration(space, vtlp_alpha=0.2, mixup_alpha=0.3))
    plain = build.build_model(space, configuration(space, vtlp_alpha=0.0, mixup_alpha=0.0))
    assert warped.get_layer("frontend").vtlp_alpha == 0.2 and plain.get_layer("frontend").vtlp_alpha == 0.0
    assert warped.loss.__name__ == "crossentropy_of_mixed_targets"
    assert plain.loss.__class__.__name__ == "SparseCategoricalCrossentropy"


def first_batch(dataset):
    return next(iter(dataset.as_numpy_iterator()))


def test_train_data_maps_the_shared_batches_through_each_trials_settings():
    space = smoke_space(mixup_alpha=choice(0.0, 0.4), time_shift_ms=choice(0.0, 50.0))
    clips = tone_clips(1, 2)
    hypermodel = build.CnnHyperModel(space, n_classes=16)
    shared = make_dataset(clips, 8, training=True, seed=0)
    mixed = first_batch(hypermodel.train_data(shared, {"mixup_alpha": 0.4, "time_shift_ms": 50.0}))
    assert mixed[1].shape == (8, 16)
    np.testing.assert_allclose(mixed[1].sum(axis=1), 1, atol=1e-6)
    plain = first_batch(hypermodel.train_data(shared, {"mixup_alpha": 0.0, "time_shift_ms": 0.0}))
    assert plain[1].shape == (8,)
    assert all(any(np.array_equal(row, clip) for clip in clips.waveforms) for row in plain[0])  # un-augmented


def test_without_searched_augment_keys_every_trial_shares_the_one_augmented_dataset():
    space = smoke_space({"mixup_alpha": 0.2})
    hypermodel = build.CnnHyperModel(space, n_classes=16)
    train, _, _ = search_run._datasets(space, tone_splits(), None, 0, [f"c{index}" for index in range(16)])
    assert hypermodel.train_data(train, {"conv_layers": 1}) is train
    assert first_batch(train)[1].shape == (8, 16)  # the space's mixup, applied once by make_dataset


def test_searched_augment_keys_leave_the_shared_training_batches_unaugmented():
    space = smoke_space({"noise_probability": 1.0}, mixup_alpha=choice(0.0, 0.2))
    splits = tone_splits()
    noise = np.random.default_rng(0).normal(0, 0.1, 40000).astype(np.float32)
    train, _, _ = search_run._datasets(space, splits, noise, 0, [f"c{index}" for index in range(16)])
    waveforms, labels = first_batch(train)
    assert labels.shape == (8,)
    assert all(any(np.array_equal(row, clip) for clip in splits["train"].waveforms) for row in waveforms)
    noisy = first_batch(build.CnnHyperModel(space, 16, noise=noise).train_data(train, {"mixup_alpha": 0.0}))[0]
    assert not any(np.array_equal(noisy[0], clip) for clip in splits["train"].waveforms)  # the trial's noise


def test_normalize_is_a_front_end_hyperparameter():
    space = smoke_space(normalize=choice("none", "coefficient"))
    assert frontend_config(space, {"normalize": "coefficient"}).normalize == "coefficient"
    with pytest.raises(TunerAppError, match=r"hyperparameters\.normalize\.values\[1\]: expected one of"):
        smoke_space(normalize=choice("clip", "rows"))


def test_a_search_trains_a_trial_with_its_own_augmentation(tmp_path):
    space = smoke_space({"speed_min": 0.9, "speed_max": 1.1}, mixup_alpha=choice(0.3), vtlp_alpha=choice(0.1))
    space = dataclasses.replace(space, tuner={**space.tuner, "max_trials": 1})
    tuner = search_run.run_search(space, tone_splits(), tmp_path, class_names=[f"c{index}" for index in range(16)])
    trial = next(iter(tuner.oracle.trials.values()))
    assert trial.status == "COMPLETED" and 0 <= trial.metrics.get_last_value("val_accuracy") <= 1


@pytest.mark.parametrize("values,message", [
    ({"speed_min": 0.2}, "augment.speed_min: expected a number in [0.5, 2.0], got 0.2"),
    ({"speed_min": 1.2, "speed_max": 1.1}, "augment.speed_min: 1.2 is above speed_max 1.1"),
    ({"vtlp_alpha": 0.7}, "augment.vtlp_alpha: expected a number in [0.0, 0.5], got 0.7"),
    ({"vtlp_boundary_hz": 0}, "augment.vtlp_boundary_hz: expected a number in (0.0, 7999.0], got 0"),
    ({"mixup_alpha": -1.0}, "augment.mixup_alpha: expected a number in [0.0, 10.0], got -1.0"),
    ({"mixup_alpha": "0.2"}, "augment.mixup_alpha: expected float, got '0.2'"),
    ({"time_shift_ms": -5}, "augment.time_shift_ms: expected a number in [0.0, 1000.0], got -5"),
])
def test_bad_augment_values_are_one_line_naming_the_key(values, message):
    with pytest.raises(TunerAppError) as raised:
        AugmentConfig.from_dict(values)
    assert str(raised.value) == message


def test_a_hyperparameter_outside_its_keys_range_is_refused_when_the_space_is_read():
    with pytest.raises(TunerAppError) as raised:
        smoke_space(vtlp_alpha=choice(0.0, 0.9))
    assert str(raised.value) == ("smoke.yaml: hyperparameters.vtlp_alpha: expected a number in [0.0, 0.5], "
                                 "got 0.9")
    with pytest.raises(TunerAppError, match=r"hyperparameters\.freq_mask\.type: this hyperparameter takes int"):
        smoke_space(freq_mask={"type": "float", "min_value": 0.0, "max_value": 2.0})


def test_an_unordered_pair_a_trial_could_draw_is_refused_before_any_trial():
    space = smoke_space({"speed_max": 1.05}, speed_min=choice(0.9, 1.1))
    with pytest.raises(TunerAppError) as raised:
        build.CnnHyperModel(space)
    assert str(raised.value) == "smoke.yaml: hyperparameters.speed_min: a trial could have speed_min 1.1 above " \
                                "speed_max 1.05"
    build.CnnHyperModel(smoke_space({"speed_max": 1.1}, speed_min=choice(0.9, 1.1)))  # 1.1 <= 1.1: fine
