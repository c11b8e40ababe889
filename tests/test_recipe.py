"""The training recipe (tuner_app.model.space.recipe): each optimizer trains, the learning-rate schedules have
their shape, the smoothed loss is Keras's categorical cross-entropy on one-hot labels, batch-norm momentum
is set, weight decay spares biases and norm params, bad values are refused naming the key, and the history
holds the sparse "accuracy" and "val_accuracy" the search reads."""

import math

import numpy as np
import pytest

from tuner_app.errors import TunerAppError
from tuner_app.model.space import recipe
from tuner_app.model.space.recipe import (
    RECIPE_CHOICES,
    RECIPE_DOMAINS,
    RECIPE_HYPERPARAMETERS,
    compile_model,
    learning_rate_schedule,
    recipe_values,
    smoothed_sparse_crossentropy,
)

N_FEATURES, N_CLASSES = 6, 3


@pytest.fixture(autouse=True)
def _keras_seed():
    import keras

    keras.utils.set_random_seed(0)


def tiny_model():
    """Dense -> BN -> ReLU -> softmax; the first Dense's name holds "beta" (its kernel must still decay)."""
    import keras

    inputs = keras.Input((N_FEATURES,))
    x = keras.layers.Dense(8, name="beta_block")(inputs)
    x = keras.layers.BatchNormalization(name="beta_block_bn")(x)
    x = keras.layers.Activation("relu")(x)
    outputs = keras.layers.Dense(N_CLASSES, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs)


def tiny_data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, N_FEATURES)).astype("float32"), rng.integers(0, N_CLASSES, n)


def weight(model, layer, name):
    return next(v for v in model.get_layer(layer).weights if v.name == name)


@pytest.mark.parametrize("optimizer", RECIPE_CHOICES["optimizer"])
def test_each_optimizer_trains_an_epoch(optimizer):
    model = tiny_model()
    values = {"optimizer": optimizer, "learning_rate": 0.01, "lr_schedule": "cosine", "warmup_epochs": 1,
              "weight_decay": 0.01, "label_smoothing": 0.1}
    compile_model(model, values, steps_per_epoch=3, epochs=2)
    # The bias feeding the batch norm is left out: the norm cancels it, so its gradient is ~0.
    watched = [w for w in model.trainable_weights if w.path != "beta_block/bias"]
    before = [np.array(w) for w in watched]
    x, y = tiny_data()
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    assert all(not np.allclose(b, np.array(w)) for b, w in zip(before, watched))


def test_history_holds_sparse_accuracy_and_val_accuracy():
    model = tiny_model()
    compile_model(model, {}, steps_per_epoch=3, epochs=1)
    x, y = tiny_data()
    history = model.fit(x, y, batch_size=8, epochs=1, validation_data=tiny_data(9, seed=1), verbose=0)
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.history)
    scores = model.evaluate(x, y, verbose=0, return_dict=True)
    expected = np.mean(np.argmax(model.predict(x, verbose=0), axis=-1) == y)
    assert scores["accuracy"] == pytest.approx(expected)


def test_cosine_warms_up_then_decays_to_zero():
    values = recipe_values({"lr_schedule": "cosine", "learning_rate": 0.05, "warmup_epochs": 2})
    schedule = learning_rate_schedule(values, steps_per_epoch=10, epochs=6)
    assert float(schedule(0)) == pytest.approx(0.0, abs=1e-9)
    assert float(schedule(10)) == pytest.approx(0.025)
    assert float(schedule(20)) == pytest.approx(0.05)
    assert float(schedule(40)) == pytest.approx(0.025)  # halfway through the cosine
    assert float(schedule(59)) < 0.05 * 0.01
    assert float(schedule(60)) == pytest.approx(0.0, abs=1e-9)


def test_cosine_without_warmup_starts_at_the_peak():
    values = recipe_values({"lr_schedule": "cosine", "learning_rate": 0.05})
    schedule = learning_rate_schedule(values, steps_per_epoch=10, epochs=4)
    assert float(schedule(0)) == pytest.approx(0.05)
    assert float(schedule(40)) == pytest.approx(0.0, abs=1e-9)


def test_constant_stays_constant():
    model = tiny_model()
    compile_model(model, {"learning_rate": 0.02}, steps_per_epoch=3, epochs=2)
    before = float(model.optimizer.learning_rate)
    x, y = tiny_data()
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert before == pytest.approx(0.02)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.02)


def test_constant_with_warmup_ramps_then_holds():
    values = recipe_values({"learning_rate": 0.05, "warmup_epochs": 1})
    schedule = learning_rate_schedule(values, steps_per_epoch=10, epochs=3)
    rates = [float(schedule(step)) for step in (0, 5, 10, 20, 29, 30)]
    assert rates == pytest.approx([0.0, 0.025, 0.05, 0.05, 0.05, 0.05])


def test_smoothed_loss_is_categorical_crossentropy_of_smoothed_one_hot():
    import keras

    labels = np.array([0, 2, 1])
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.25, 0.5, 0.25]], "float32")
    one_hot = np.eye(3, dtype="float32")[labels]
    for smoothing in (0.1, 0.3):
        expected = keras.losses.categorical_crossentropy(one_hot, probs, label_smoothing=smoothing)
        got = smoothed_sparse_crossentropy(smoothing)(labels, probs)
        np.testing.assert_allclose(np.array(got), np.array(expected), rtol=1e-6)
    by_hand = -(0.9 + 0.1 / 3) * math.log(0.7) - (0.1 / 3) * (math.log(0.2) + math.log(0.1))
    assert float(smoothed_sparse_crossentropy(0.1)(labels, probs)[0]) == pytest.approx(by_hand, rel=1e-5)
    plain = keras.losses.sparse_categorical_crossentropy(labels, probs)
    np.testing.assert_allclose(np.array(smoothed_sparse_crossentropy(0.0)(labels, probs)), np.array(plain),
                               rtol=1e-6)


def test_compiled_loss_uses_the_smoothing():
    import keras

    model = tiny_model()
    compile_model(model, {"label_smoothing": 0.2}, steps_per_epoch=1, epochs=1)
    x, y = tiny_data(8)
    one_hot = np.eye(N_CLASSES, dtype="float32")[y]
    expected = keras.losses.categorical_crossentropy(one_hot, model.predict(x, verbose=0), label_smoothing=0.2)
    assert model.evaluate(x, y, verbose=0, return_dict=True)["loss"] == pytest.approx(float(np.mean(expected)),
                                                                                     rel=1e-5)


def test_batch_norm_momentum_is_set_in_nested_models_too():
    import keras

    inner = tiny_model()
    inputs = keras.Input((N_FEATURES,))
    x = keras.layers.BatchNormalization(name="outer_bn")(inputs)
    outer = keras.Model(inputs, inner(x))
    compile_model(outer, {"batch_norm_momentum": 0.8}, steps_per_epoch=1, epochs=1)
    assert outer.get_layer("outer_bn").momentum == 0.8
    assert inner.get_layer("beta_block_bn").momentum == 0.8
    compile_model(outer, {"learning_rate": 0.1}, steps_per_epoch=1, epochs=1)
    assert inner.get_layer("beta_block_bn").momentum == RECIPE_HYPERPARAMETERS["batch_norm_momentum"] == 0.9


def decayed_once(model, optimizer, weight_decay):
    """Every trainable weight set to 1, then one optimizer step with zero gradients: only decay moves them."""
    import keras

    compile_model(model, {"optimizer": optimizer, "learning_rate": 0.1, "weight_decay": weight_decay},
                  steps_per_epoch=1, epochs=1)
    for variable in model.trainable_variables:
        variable.assign(np.ones(variable.shape, "float32"))
    zeros = [keras.ops.zeros(v.shape) for v in model.trainable_variables]
    model.optimizer.apply_gradients(zip(zeros, model.trainable_variables))


@pytest.mark.parametrize("optimizer,weight_decay", [("adam", 0.5), ("adamw", 0.5), ("sgd", 0.5), ("adamw", 0.0)])
def test_weight_decay_shrinks_kernels_not_biases_or_norm_params(optimizer, weight_decay):
    model = tiny_model()
    decayed_once(model, optimizer, weight_decay)
    shrunk = 1 - 0.1 * weight_decay
    np.testing.assert_allclose(np.array(weight(model, "beta_block", "kernel")), shrunk, rtol=1e-6)
    np.testing.assert_allclose(np.array(weight(model, "classifier", "kernel")), shrunk, rtol=1e-6)
    for layer, name in [("beta_block", "bias"), ("classifier", "bias"), ("beta_block_bn", "gamma"),
                        ("beta_block_bn", "beta")]:
        np.testing.assert_array_equal(np.array(weight(model, layer, name)), 1.0)


def test_sub_spectral_norm_params_do_not_decay():
    import keras

    from tuner_app.model.architecture.residual_blocks import sub_spectral_norm

    inputs = keras.Input((4, 3, 2))
    x = keras.layers.Conv2D(2, 1, name="conv")(inputs)
    x = sub_spectral_norm(x, 2, "b01_ssn")
    outputs = keras.layers.Dense(N_CLASSES, activation="softmax")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    decayed_once(model, "sgd", 0.5)
    np.testing.assert_allclose(np.array(weight(model, "conv", "kernel")), 0.95, rtol=1e-6)
    for name in ("gamma", "beta"):
        np.testing.assert_array_equal(np.array(weight(model, "b01_ssn", name)), 1.0)


def test_other_hyperparameters_are_ignored_and_defaults_fill_in():
    values = recipe_values({"conv_layers": 3, "learning_rate": 0.01, "head": "flatten"})
    assert values == {**RECIPE_HYPERPARAMETERS, "learning_rate": 0.01}
    assert set(RECIPE_CHOICES) | set(RECIPE_DOMAINS) == set(RECIPE_HYPERPARAMETERS)
    assert not set(RECIPE_CHOICES) & set(RECIPE_DOMAINS)


@pytest.mark.parametrize("key,value", [
    ("optimizer", "rmsprop"), ("optimizer", None), ("lr_schedule", "step"), ("learning_rate", 0.0),
    ("learning_rate", -0.1), ("learning_rate", "fast"), ("learning_rate", math.nan), ("warmup_epochs", -1),
    ("warmup_epochs", 1.5), ("warmup_epochs", True), ("weight_decay", -0.01), ("weight_decay", math.inf),
    ("label_smoothing", 1.0), ("label_smoothing", -0.1), ("batch_norm_momentum", 1.0),
    ("batch_norm_momentum", -0.5),
])
def test_bad_values_raise_naming_the_key(key, value):
    with pytest.raises(TunerAppError, match=rf"^{key}: expected .*got {value!r}"):
        compile_model(tiny_model(), {key: value}, steps_per_epoch=2, epochs=3)


def test_bad_optimizer_message():
    with pytest.raises(TunerAppError) as error:
        recipe_values({"optimizer": "rmsprop"})
    assert str(error.value) == "optimizer: expected one of ['adam', 'adamw', 'sgd'], got 'rmsprop'"


def test_warmup_must_end_before_training_does():
    values = recipe_values({"lr_schedule": "cosine", "warmup_epochs": 3})
    with pytest.raises(TunerAppError, match="^warmup_epochs: expected fewer than the 3 training epochs, got 3"):
        learning_rate_schedule(values, steps_per_epoch=5, epochs=3)
    with pytest.raises(TunerAppError, match="^steps_per_epoch: "):
        recipe.build_optimizer(recipe_values({}), steps_per_epoch=0, epochs=3)
