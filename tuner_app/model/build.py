"""The Keras build of a configuration, and the keras_tuner.HyperModel over a search space.

Batch normalisation sits between the conv and its activation (the usual placement); the conv keeps its
bias so BN on only adds 4 params per channel. The layers follow `architecture`, whose arithmetic the
tests check against the built model.
"""

from __future__ import annotations

from typing import Any, Mapping

import keras_tuner

from tuner_app.features.frontend import output_shape
from tuner_app.model.architecture import (
    N_CLASSES,
    _conv_channels,
    _fc_units,
    feature_shapes,
)
from tuner_app.model.spaces import SearchSpace, declare


def build_model(space: SearchSpace, values: Mapping[str, Any], n_classes: int = N_CLASSES):
    """Build and compile the Keras model for one configuration (raises InfeasibleConfig first)."""
    import keras

    feature_shapes(space, values)
    two_d = space.model == "cnn2d"
    conv, pool = (keras.layers.Conv2D, keras.layers.MaxPooling2D) if two_d else (
        keras.layers.Conv1D, keras.layers.MaxPooling1D)
    inputs = keras.Input(output_shape(space.frontend))
    x = inputs
    for layer in range(values["conv_layers"]):
        x = conv(_conv_channels(values, layer), values["kernel_size"], padding="valid")(x)
        if values["batch_norm"]:
            x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation("relu")(x)
        x = pool(values["pool_size"], padding="same")(x)
    x = _head(keras, values["head"], two_d)(x)
    for units in _fc_units(values):
        x = keras.layers.Dense(units, activation="relu")(x)
        x = keras.layers.Dropout(values["dropout"])(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name=space.model)
    model.compile(optimizer=keras.optimizers.Adam(values["learning_rate"]),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _head(keras, head: str, two_d: bool):
    if head == "flatten":
        return keras.layers.Flatten()
    return keras.layers.GlobalAveragePooling2D() if two_d else keras.layers.GlobalAveragePooling1D()


class CnnHyperModel(keras_tuner.HyperModel):
    """keras_tuner.HyperModel for a SearchSpace: every hp is declared before any value is read."""

    def __init__(self, space: SearchSpace, n_classes: int = N_CLASSES, **kwargs):
        super().__init__(name=space.model, **kwargs)
        self.space = space
        self.n_classes = n_classes

    def declare_hyperparameters(self, hp) -> None:
        declare(hp, self.space)

    def build(self, hp):
        declare(hp, self.space)
        values = {name: hp.get(name) for name in self.space.hyperparameters}
        return build_model(self.space, values, self.n_classes)
