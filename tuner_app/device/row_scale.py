"""One int8 input scale per feature row, folded into the first convolution, for a network whose first weighted
layer takes the feature rows as its input channels (TC-ResNet: `frequency_as_channels`, then a Conv1D over
time). The int8 input has one scale for all rows; clip-normalised MFCCs keep c0 10-50x wider than the other
rows, which then get a handful of steps. Dividing row b by s[b] and multiplying the conv's kernel[:, b, :] by
s[b] is exact in float. It moves precision from the conv's weights to its input: the weights are int8 per
output channel, so a row scaled down by s[b] gets s[b] of the weight steps it had, and the input steps times
the weight steps of a row stay constant. s[b] = sqrt(r[b]) (r: the row's width over the widest's) splits them
evenly: on TC-ResNet8 (FSDD by speaker, 500 test clips, float network) the int8 input and first-conv weights
change 30 predictions with s = 1, 23 with s = r, 6 with sqrt(r). A network that mixes rows otherwise (2D
convolutions over the feature map: DS-CNN, BC-ResNet, the seed CNNs) has no row scales and converts as before.

The scales travel inside the .tflite (metadata ROW_SCALE_METADATA, float32 little-endian, one per row), so
whoever holds the file quantizes its input as the device must: q = round(x[b] / s[b] / scale) + zero_point."""

from __future__ import annotations

import numpy as np

ROW_SCALE_METADATA = "tuner_app.row_scale"
# A row narrower than 1/256 of the widest is scaled as if it were that wide (s >= 1/16): dividing by a
# near-zero calibration range would send unseen values far past the int8 range.
MIN_ROW_SCALE = 1.0 / 16
ROWS_LAYER = "frontend_rows"  # the waveform model's division by the scales: float, part of the front-end


def first_conv(model):
    """The Conv1D whose input channels are the front-end's rows, reached from the `frontend` layer's output only
    through layers that keep row b as channel b in the end (SpecAugment: identity outside training; a Permute; a
    Reshape dropping a trailing axis of 1), each the only reader of what it reads; else None."""
    import keras

    tensor = model.get_layer("frontend").output
    bins, axis = tensor.shape[1], 1  # where the rows are: [batch, rows, frames, 1]
    while axis is not None:
        readers = _readers(model, tensor)
        if len(readers) != 1:
            return None
        layer = readers[0]
        if isinstance(layer, keras.layers.Conv1D):
            on_channels = axis == 2 and layer.data_format == "channels_last"
            return layer if on_channels and layer.kernel.shape[1] == bins else None
        axis, tensor = _rows_axis(layer, axis, tuple(tensor.shape)), layer.output
    return None


def _readers(model, tensor) -> list:
    """The model's layers that take `tensor` as an input (KerasTensors compare by identity: == is an op)."""
    import keras

    def reads(layer) -> bool:
        return any(given is tensor for node in layer._inbound_nodes for given in keras.tree.flatten(node.input_tensors))

    return [layer for layer in model.layers if reads(layer)]


def _rows_axis(layer, axis: int, shape: tuple) -> int | None:
    """Where the rows are after `layer`, given they are at `axis` of its input `shape`; None if it mixes them."""
    import keras

    from tuner_app.features.layers import SpecAugment

    if isinstance(layer, SpecAugment):
        return axis
    if isinstance(layer, keras.layers.Permute):
        return 1 + tuple(layer.dims).index(axis)
    drops_last = isinstance(layer, keras.layers.Reshape) and shape[-1] == 1 and axis < len(shape) - 1
    return axis if drops_last and tuple(layer.output.shape[1:]) == shape[1:-1] else None


def scales(model, calibration_features: np.ndarray) -> np.ndarray | None:
    """s[b] = sqrt(r[b]), r[b]: row b's largest |feature| over the calibration features [n, bins, frames, 1]
    over the widest row's (so the widest row's s is 1), s at least MIN_ROW_SCALE; None where the network cannot
    fold them (first_conv)."""
    if first_conv(model) is None:
        return None
    widths = np.max(np.abs(calibration_features), axis=(0, 2, 3), initial=0.0)
    if not np.max(widths) > 0:  # no calibration, or silence: nothing to scale by
        return np.ones(len(widths), np.float32)
    return np.maximum(np.sqrt(widths / np.max(widths)), MIN_ROW_SCALE).astype(np.float32)


def divided(features: np.ndarray, row_scale) -> np.ndarray:
    """Features [..., bins, frames, 1] with row b divided by row_scale[b] (None: as they are)."""
    if row_scale is None:
        return np.asarray(features, np.float32)
    return (np.asarray(features, np.float32) / np.asarray(row_scale, np.float32)[:, np.newaxis, np.newaxis])


def scaled_network(model, row_scale: np.ndarray):
    """The network past the front-end (features_in.network) for features divided by row_scale per row: the same
    probabilities, from a copy of the first conv whose kernel[:, b, :] is multiplied by row_scale[b]; every
    other layer is the model's own (the model unchanged, the converted graph named as before)."""
    import keras

    from tuner_app.device import features_in

    conv = first_conv(model)
    scaled = _scaled_copy(conv, row_scale)
    return keras.models.clone_model(features_in.network(model),
                                    clone_function=lambda layer: scaled if layer is conv else layer)


def _scaled_copy(conv, row_scale: np.ndarray):
    copy = type(conv).from_config(conv.get_config())
    copy.build(conv.input.shape)
    kernel, *rest = conv.get_weights()  # [taps, rows, filters], then the bias if any
    copy.set_weights([kernel * np.asarray(row_scale, kernel.dtype)[np.newaxis, :, np.newaxis], *rest])
    return copy


def _dividing_layer(row_scale: np.ndarray):
    """features / row_scale per row, named ROWS_LAYER: the waveform int8 file keeps it float with the front-end
    (tflite.FRONTEND_SCOPE), so its one float -> int8 step is at the scaled features."""
    import keras

    inverse = (1.0 / np.asarray(row_scale, np.float32))[:, np.newaxis, np.newaxis]
    return keras.layers.Lambda(lambda features: features * inverse, name=ROWS_LAYER)


def waveform_model(model, calibration_waveforms: np.ndarray):
    """The Keras model with its rows scaled for the waveform int8 file: front-end, division by the scales (float),
    scaled network; the model itself where it has no row scales."""
    import keras

    from tuner_app.device import features_in

    row_scale = scales(model, features_in.features_of(model, calibration_waveforms))
    if row_scale is None:
        return model
    features = _dividing_layer(row_scale)(model.get_layer("frontend").output)
    return keras.Model(model.input, scaled_network(model, row_scale)(features), name=model.name)


def attached(blob: bytes, row_scale: np.ndarray) -> bytes:
    """The .tflite with row_scale stored as its metadata ROW_SCALE_METADATA (TFLite Micro skips metadata it does
    not know; the arena is unchanged, the file ~200 bytes longer)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(blob))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(np.asarray(row_scale, "<f4").tobytes(), np.uint8)
    entry = schema.MetadataT()
    entry.name, entry.buffer = ROW_SCALE_METADATA, len(model.buffers)
    model.buffers.append(buffer)
    model.metadata = [*(model.metadata or []), entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def stored(blob: bytes) -> list[float] | None:
    """The row scales a .tflite carries (attached), None where it has none."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAs(blob, 0)
    for index in range(model.MetadataLength()):
        entry = model.Metadata(index)
        if entry.Name() == ROW_SCALE_METADATA.encode():
            data = model.Buffers(entry.Buffer()).DataAsNumpy()
            return np.frombuffer(data.tobytes(), "<f4").astype(float).tolist()
    return None
