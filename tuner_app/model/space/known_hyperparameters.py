"""The `hyperparameters:` section of a space: what a space may declare (its families', the recipe's, the
front-end keys, the augment keys, `family`, `frontend`, `epochs`), each checked against its type and domain;
every family and recipe hyperparameter the YAML leaves out, Fixed at its default; and the conditional scopes
that keep a family's hyperparameters to its own trials and the seed's FC ones to the fc_layers values that use
them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuner_app.errors import TunerAppError
from tuner_app.features import augment_config
from tuner_app.features.frontend import NORMALIZE, FrontendConfig
from tuner_app.model.architecture.families import FAMILIES, FC_UNITS, MODEL_FAMILY, family_defaults
from tuner_app.model.space import hyperparameters as hps
from tuner_app.model.space.recipe import RECIPE_CHOICES, RECIPE_DOMAINS, RECIPE_HYPERPARAMETERS

FAMILY = "family"  # the hyperparameter that picks each trial's family under `model: family`
MODELS = (*MODEL_FAMILY, FAMILY)
# Front-end keys a hyperparameter may set per trial (FrontendConfig checks each configuration's values).
FRONTEND_FIELDS = ("frame_length", "frame_step", "fft_length", "num_mel_bins", "num_mfccs", "lower_edge_hertz",
                   "upper_edge_hertz", "normalize")
FRONTEND_STRINGS = {"normalize": NORMALIZE}
# Augment keys a hyperparameter may set per trial, over the space's `augment:` (model.architecture.build.trial_augment);
# their values are checked against augment_config.RANGES, not DOMAINS.
AUGMENT_FIELDS = augment_config.FIELDS
# [low, high) of numeric hyperparameters; otherwise ints are in [1, 65536] and floats > 0. `*_dropout` as
# `dropout`. The highs keep each configuration's walk quick and each range small enough for keras-tuner to list
# (its grid does): far beyond a compact CNN on a 16,000-sample clip, yet bounded. Layer counts cost a walk most.
MAX_FC_LAYERS = 16
DOMAINS = {"conv_layers": (1, 33), "fc_layers": (0, MAX_FC_LAYERS + 1), "dscnn_blocks": (1, 33),
           "tcresnet_width": (1e-12, 256.0), "epochs": (1, 10_001), "dropout": (0.0, 1.0), **RECIPE_DOMAINS,
           "learning_rate": (1e-12, None), "warmup_epochs": (0, 10_000)}
POSITIVE = {int: (1, 65_537), float: (1e-12, None)}
FC_UNITS_NAMES = frozenset(f"fc_units_{layer}" for layer in range(1, MAX_FC_LAYERS + 1))


def _families(declared: Mapping[str, Any], model: str, where: str) -> list[str]:
    """The families a space searches: the one `model` names, or the values of its `family` hyperparameter."""
    if model != FAMILY:
        if FAMILY in declared:
            raise TunerAppError(f"{where}.{FAMILY}: only with `model: family` (this space is model {model})")
        return [MODEL_FAMILY[model]]
    if FAMILY not in declared:
        raise TunerAppError(f"{where}.{FAMILY}: missing; `model: family` searches the families it lists")
    spec = hps.checked_spec(declared[FAMILY], str, f"{where}.{FAMILY}", tuple(FAMILIES))
    return hps.candidate_values(spec)


def _known(families: list[str], model: str, frontends: Mapping[str, FrontendConfig]) -> dict[str, tuple]:
    """name -> (value type, allowed strings or None, default or None) of every hyperparameter a space may declare."""
    known: dict[str, tuple] = {FAMILY: (str, tuple(FAMILIES), None), "epochs": (int, None, None),
                               "frontend": (str, tuple(frontends), None)}
    known.update({name: (type(getattr(FrontendConfig, name)), FRONTEND_STRINGS.get(name), None)
                  for name in FRONTEND_FIELDS})
    known.update({name: (type(getattr(augment_config.AugmentConfig, name)), None, None) for name in AUGMENT_FIELDS})
    known.update({name: (type(default), RECIPE_CHOICES.get(name), default)
                  for name, default in RECIPE_HYPERPARAMETERS.items()})
    for family in families:
        strings = FAMILIES[family].strings
        known.update({name: (type(default), strings.get(name), default)
                      for name, default in family_defaults(family, model).items()})
    return known


def _owner(name: str, families: list[str]) -> str | None:
    return next((family for family in families if FAMILIES[family].owns(name)), None)


def checked_hyperparameters(declared: Mapping[str, Any], model: str, frontends: Mapping[str, FrontendConfig],
                     source: str) -> dict[str, dict[str, Any]]:
    """The validated specs of a space's hyperparameters, parents before their conditional children."""
    where = f"{source}: hyperparameters"
    families = _families(declared, model, where)
    known = _known(families, model, frontends)
    specs = {}
    for name, spec in declared.items():
        if name not in known and not (name in FC_UNITS_NAMES and "seed" in families):
            raise TunerAppError(f"{where}.{name}: unknown hyperparameter for model {model}; expected one of "
                                f"{sorted(known)} or fc_units_1..fc_units_{MAX_FC_LAYERS}")
        value_type, strings, _ = known.get(name, (int, None, None))
        specs[name] = hps.checked_spec(spec, value_type, f"{where}.{name}", strings)
    if "frontend" in specs and not frontends:
        raise TunerAppError(f"{where}.frontend: needs presets to pick from under the top-level `frontends`")
    _check_domains(specs, where)  # first: what follows walks the values of fc_layers
    _fill_defaults(specs, known)
    _add_family_scopes(specs, families, model)
    for name in specs:
        hps.check_scope(specs, name, where)
    specs = hps.parents_first(specs, where)
    _check_fc_units(specs, where)
    return specs


def _fill_defaults(specs: dict[str, dict], known: Mapping[str, tuple]) -> None:
    for name, (_, _, default) in known.items():
        if default is not None and not FC_UNITS.match(name):
            specs.setdefault(name, {"type": "fixed", "value": default})
    deepest_fc = hps.bound(specs["fc_layers"], max) if "fc_layers" in specs else 0
    for name, (_, _, default) in known.items():
        match = FC_UNITS.match(name)  # fc_units_K deeper than fc_layers allows would only clutter the params
        if match and int(match.group(1)) <= deepest_fc:
            specs.setdefault(name, {"type": "fixed", "value": default})


def _add_family_scopes(specs: dict[str, dict], families: list[str], model: str) -> None:
    """Each family's hyperparameters inside the scope of its `family` value, and the seed's FC hyperparameters
    inside the scope of the fc_layers values that use them (derived anew each time, so an edited fc_layers
    never meets a stale scope); an FC hyperparameter that no fc_layers value uses is left out."""
    unused = []
    for name, spec in specs.items():
        owner = _owner(name, families)
        if owner is None:
            continue
        scopes = hps.scope(spec)
        if model == FAMILY:
            scopes = {FAMILY: scopes.pop(FAMILY, [owner]), **scopes}
        condition = FAMILIES[owner].condition(name)
        if condition and condition[0] in specs:
            parent, activates = condition
            candidates = hps.candidate_values(specs[parent]) or []
            allowed = [value for value in candidates if activates(value)]
            scopes.pop(parent, None)
            if not allowed:
                unused.append(name)
            elif len(allowed) < len(candidates):
                scopes[parent] = allowed
        spec.pop(hps.SCOPE, None)
        if scopes:
            spec[hps.SCOPE] = scopes
    for name in unused:
        del specs[name]


def _domain(name: str, value_type: type) -> tuple:
    return DOMAINS.get(name) or (DOMAINS["dropout"] if name.endswith("_dropout") else POSITIVE[value_type])


def _check_domains(specs: dict[str, dict], where: str) -> None:
    """Each numeric hyperparameter within its domain; the front-end's floats (0 Hz is a valid lower edge) are
    left to FrontendConfig, which checks each configuration, and the augment keys have their own ranges."""
    for name, spec in specs.items():
        value = hps.bound(spec, min)
        if name in AUGMENT_FIELDS:
            _check_augment_range(name, spec, where)
            continue
        if type(value) not in POSITIVE or (name in FRONTEND_FIELDS and type(value) is float):
            continue
        low, high = _domain(name, type(value))
        if value < low or (high is not None and hps.bound(spec, max) >= high):
            raise TunerAppError(f"{where}.{name}: values must be {_domain_text(low, high)}")


def _check_augment_range(name: str, spec: Mapping[str, Any], where: str) -> None:
    for pick in (min, max):
        problem = augment_config.field_problem(name, hps.bound(spec, pick))
        if problem:
            raise TunerAppError(f"{where}.{name}: {problem}")


def _domain_text(low, high) -> str:
    if high is None:
        return f">= {low}"
    return f"from {low} to {high - 1:,}" if isinstance(low, int) else f"in [{low}, {high})"


def _check_fc_units(specs: dict[str, dict], where: str) -> None:
    if "fc_layers" not in specs:
        return
    deepest = hps.bound(specs["fc_layers"], max)
    for layer in range(1, deepest + 1):
        if f"fc_units_{layer}" not in specs:
            raise TunerAppError(f"{where}.fc_units_{layer}: missing; fc_layers can be {deepest}, so "
                                f"fc_units_1..fc_units_{deepest} must be declared")
