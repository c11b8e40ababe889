"""model_bytes is the size of the deployable weights (float32), not of the training checkpoint."""

import os

from conftest import smoke_space, tone_splits

from tuner_app.search import keras_tuner_internals, run as search_run


def test_model_bytes_counts_the_float32_weights_without_optimizer_state(tmp_path):
    tuner = search_run.run_search(smoke_space(max_trials=1), tone_splits(), tmp_path)
    trial = tuner.oracle.trials["0"]
    model_bytes, params = (trial.metrics.get_last_value(name) for name in ("model_bytes", "params_total"))
    assert model_bytes == 4 * params
    # The checkpoint also holds Adam's two moments per weight: it is the larger.
    assert os.path.getsize(keras_tuner_internals.checkpoint_file(tuner, "0")) > model_bytes
