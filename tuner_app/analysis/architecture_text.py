"""A trial's architecture in a few words, from its hyperparameters: the Pareto table's and CSV's first column."""

from __future__ import annotations

from typing import Any, Mapping

# How the non-seed families read: the hyperparameters that set their size.
FAMILY_DETAILS = {"dscnn": ("dscnn_filters", "dscnn_blocks"), "tcresnet": ("tcresnet_depth", "tcresnet_width"),
                  "bcresnet": ("bcresnet_width",)}


def architecture(row: Mapping[str, Any]) -> str:
    """A short readable description, e.g. "2D conv3(5x5, 8..32) fc2(1024,512) BN flatten" or
    "mfcc10 dscnn(dscnn_filters=64, dscnn_blocks=4)"."""
    values = row.get("hyperparameters") or {}
    model = values.get("family") or row.get("model")
    preset = [str(values["frontend"])] if values.get("frontend") else []
    if model in FAMILY_DETAILS:
        details = ", ".join(f"{name}={values[name]}" for name in FAMILY_DETAILS[model] if name in values)
        return " ".join([*preset, f"{model}({details})"])
    dims = {"cnn1d": "1D", "cnn2d": "2D"}.get(model, model or "?")
    parts = [*preset, dims]
    if "conv_layers" in values:
        parts.append(f"conv{values['conv_layers']}{_conv_detail(values, dims)}")
    if "fc_layers" in values:
        units = [str(values.get(f"fc_units_{layer}", "?")) for layer in range(1, int(values["fc_layers"]) + 1)]
        parts.append(f"fc{values['fc_layers']}" + (f"({','.join(units)})" if units else ""))
    if str(values.get("batch_norm")).lower() == "true":
        parts.append("BN")
    if values.get("head"):
        parts.append(str(values["head"]))
    return " ".join(parts)


def _conv_detail(values: Mapping[str, Any], dims: str) -> str:
    if not all(key in values for key in ("kernel_size", "filters")):
        return ""
    kernel = f"{values['kernel_size']}x{values['kernel_size']}" if dims == "2D" else str(values["kernel_size"])
    first = int(values["filters"])
    last = first * int(values.get("filter_growth", 1)) ** (int(values["conv_layers"]) - 1)
    return f"({kernel}, {first if last == first else f'{first}..{last}'})"
