"""Every part of keras-tuner (1.4.8) that tuner-app uses beyond its public API, in one place: each `keras_tuner.src`
import and each private attribute or method of a keras-tuner object. tests/test_keras_tuner_contract.py pins every
entry, so an upgrade that changes one fails there, by name; import-linter (setup.cfg) keeps `keras_tuner.src` out of
every other module. Hook methods our subclasses override (`_random_values`, `_populate_initial_space`, ...) stay
in those subclasses: overriding them is how keras-tuner is meant to be extended; an override that extends
keras-tuner's own passes `super()` here as `parent`.
"""

from __future__ import annotations

import glob
import os
from typing import Any

from keras_tuner.src import protos
from keras_tuner.src.distribute import oracle_chief, oracle_client, utils

# keras-tuner's gRPC servicer of its oracle: search/chief.py serves it, with lost workers' trials retried.
OracleServicer = oracle_chief.OracleServicer
# What keras-tuner wraps a worker's oracle in (every call goes to the chief): search/worker.py extends it.
OracleClient = oracle_client.OracleClient


def has_chief_oracle() -> bool:
    """Whether keras-tuner runs this process in a distributed search (KERASTUNER_* set): distribution.role."""
    return utils.has_chief_oracle()


def is_chief_oracle() -> bool:
    """Whether keras-tuner takes this process for the chief (KERASTUNER_TUNER_ID contains "chief")."""
    return utils.is_chief_oracle()


def service_messages():
    """keras-tuner's gRPC request and response classes (for the protobuf installed): the chief's and workers' calls."""
    return protos.get_service()


def service_grpc():
    """keras-tuner's gRPC module of its oracle service (add_OracleServicer_to_server, OracleStub): the chief's."""
    return protos.get_service_grpc()


def wrapped_oracle(client) -> Any:
    """The worker's own oracle inside keras-tuner's OracleClient (._oracle): it answers what needs no chief."""
    return client._oracle


def retry_queue(oracle) -> list[str]:
    """A copy of the trial ids create_trial hands out again, last first, before new ones (Oracle._retry_queue)."""
    return list(oracle._retry_queue)


def queue_retry(oracle, trial_id: str) -> None:
    """Queue a lost worker's trial for create_trial to hand out again, as reload queues one (Oracle._retry_queue)."""
    oracle._retry_queue.append(trial_id)


def unqueue_retry(oracle, trial_id: str) -> None:
    """Take a trial out of Oracle._retry_queue: the chief withholds it, or gives it back to its own worker."""
    oracle._retry_queue.remove(trial_id)


def save_trial(oracle, trial) -> None:
    """Write a trial's trial.json now (Oracle._save_trial), as keras-tuner does only in its create, update, end."""
    oracle._save_trial(trial)


def oracle_file(oracle) -> str:
    """The oracle.json reload reads (Oracle._get_oracle_fname): oracles.py writes it whole or not at all."""
    return oracle._get_oracle_fname()


def trial_file(oracle, trial_id: str) -> str:
    """A trial's trial.json, where reload reads it (Oracle._get_trial_dir, which creates the folder): written whole."""
    return os.path.join(oracle._get_trial_dir(trial_id), "trial.json")


def trial_files(oracle) -> list[str]:
    """Every trial.json of the project, sorted, as reload finds them (Oracle._project_dir): a worker reads them."""
    return sorted(glob.glob(os.path.join(oracle._project_dir, "trial_*", "trial.json")))


def random_values(parent) -> dict[str, Any] | None:
    """keras-tuner's random draw (Oracle._random_values; None once _duplicate refused too many): ours redraws."""
    return parent._random_values()


def is_duplicate(parent, values) -> bool:
    """Whether keras-tuner's random draw skips these values as tried (Oracle._duplicate): ours adds rejections."""
    return parent._duplicate(values)


def gaussian_process_data(parent) -> tuple:
    """(x, y) the Bayesian oracle fits its Gaussian process on (_vectorize_trials): ours leaves STOPPED ones out."""
    return parent._vectorize_trials()


def hyperband_round_sizes(oracle) -> list[int]:
    """The trials of each round of each bracket in one Hyperband iteration (HyperbandOracle): planned.trials."""
    return [oracle._get_size(bracket, round_) for bracket in range(oracle._get_num_brackets())
            for round_ in range(oracle._get_num_rounds(bracket))]


def build_model(tuner, hp):
    """The trial's model as keras-tuner builds it (Tuner._try_build; Hyperband's loads the weights it continues)."""
    return tuner._try_build(hp)


def checkpoint_file(tuner, trial_id: str) -> str:
    """Where keras-tuner's load_model and Hyperband read a trial's weights (Tuner._get_checkpoint_fname)."""
    return tuner._get_checkpoint_fname(trial_id)


def build_config_file(tuner, trial_id: str) -> str:
    """Where they read the build config they rebuild the model from first (Tuner._get_build_config_fname)."""
    return tuner._get_build_config_fname(trial_id)


def tuner_file(tuner) -> str:
    """The tuner's state file (tuner0.json), which keras-tuner's reload requires (BaseTuner._get_tuner_fname)."""
    return tuner._get_tuner_fname()
