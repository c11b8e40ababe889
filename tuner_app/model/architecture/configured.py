"""The architecture of one configuration of a space: its front-end, its family's spec of blocks, and the walk
that sizes it (exact params, MACs, shapes) before anything is built. Infeasible configurations raise
InfeasibleConfig: a kernel larger than the feature map, too many strides, a front-end that cannot be.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from tuner_app.errors import InfeasibleConfig, TunerAppError
from tuner_app.features.frontend import FrontendConfig, output_shape
from tuner_app.model.architecture import spec
from tuner_app.model.architecture.blocks import Block
from tuner_app.model.architecture.families import MODEL_FAMILY, family_spec
from tuner_app.model.space.known_hyperparameters import FAMILY, FRONTEND_FIELDS
from tuner_app.model.space.search_space import SearchSpace

N_CLASSES = 16
FC_KINDS = ("dense",)  # the rows the seed study calls the FC layers; every other row counts as conv


def family_of(space: SearchSpace, values: Mapping[str, Any]) -> str:
    """The family a configuration builds: its `family` value, or the one the space's `model` names."""
    return values[FAMILY] if space.model == FAMILY else MODEL_FAMILY[space.model]


def model_name(space: SearchSpace, values: Mapping[str, Any]) -> str:
    """What a configuration is called: the space's `model` (cnn1d, cnn2d, dscnn, ...), or its family's name
    under `model: family`."""
    return values[FAMILY] if space.model == FAMILY else space.model


def frontend_config(space: SearchSpace, values: Mapping[str, Any]) -> FrontendConfig:
    """The configuration's front-end: the `frontend` preset it picks (else the space's), with the front-end
    keys it sets; InfeasibleConfig if they make no valid front-end."""
    base = space.frontends[values["frontend"]] if "frontend" in values else space.frontend
    overrides = {name: values[name] for name in FRONTEND_FIELDS if name in values}
    try:
        return dataclasses.replace(base, **overrides)
    except TunerAppError as error:
        raise InfeasibleConfig(str(error)) from None


def blocks(space: SearchSpace, values: Mapping[str, Any], n_classes: int = N_CLASSES) -> list[Block]:
    """The configuration's spec, without the classifier the walk and build append when it has none."""
    return family_spec(family_of(space, values), values, n_classes)


def walk(space: SearchSpace, values: Mapping[str, Any], n_classes: int = N_CLASSES) -> spec.Walk:
    """Shapes and sizes of every block on the configuration's front-end (InfeasibleConfig if it cannot be)."""
    return spec.walk(blocks(space, values, n_classes), output_shape(frontend_config(space, values)), n_classes)


def sizes(space: SearchSpace, values: Mapping[str, Any], n_classes: int = N_CLASSES) -> dict[str, int]:
    """params_total / trainable / conv (every row but Dense) / fc (the Dense rows, classifier included), macs."""
    walked = walk(space, values, n_classes)
    fc = sum(row.params for row in walked.rows if row.kind in FC_KINDS)
    return {"params_total": walked.params_total, "params_trainable": walked.params_trainable,
            "params_conv": walked.params_total - fc, "params_fc": fc, "macs": walked.macs}
