"""What tuner-app relies on in keras-tuner (1.4.8) beyond its public API. Each test names the private API it
pins, so an upgrade that changes one fails here, by name, instead of somewhere deep in a search. Every call into
it goes through search/keras_tuner_internals.py, and every entry of that module is exercised here.

- Oracle._random_values(): every random draw of the Random, Bayesian (initial points) and Hyperband (first
  rounds) oracles; a dict of values, or None once `_duplicate` turned down too many (search/oracles.py
  redraws over it until a configuration fits).
- Oracle._duplicate(values): what `_random_values` asks to skip a configuration (oracles.py adds rejections).
- The oracle state's "retry_queue" and "ongoing_trials" (Oracle.get_state/set_state): reload queues the
  ongoing trials for retry and create_trial retries the queue first (oracles.py `_requeued`).
- Oracle._retry_queue: the trial ids create_trial hands out again, last first, before new ones; the chief
  (search/chief.py) queues a lost worker's trial there, and withholds or takes back queued ones.
- Oracle._save_trial(trial), _get_trial_dir(trial_id)/trial.json, _project_dir/trial_*/trial.json,
  _get_oracle_fname(): where a trial and the oracle are written and reload reads them (oracles.py writes them
  whole or not at all; a worker reads the chief's trials from them).
- HyperbandOracle._get_num_brackets(), _get_num_rounds(bracket), _get_size(bracket, round): the bracket
  arithmetic behind search/planned.trials.
- keras_tuner.Hyperband: __init__ only builds its oracle (tuners.py calls keras_tuner.Tuner.__init__ with
  ours), and _build_hypermodel loads the weights of the trial named by tuner/trial_id.
- Tuner._try_build(hp), Tuner._get_checkpoint_fname(trial_id), Tuner._get_build_config_fname(trial_id):
  used by tuners.run_trial and save_model (where load_model and Hyperband look for a trial's weights);
  BaseTuner._get_tuner_fname(), the tuner file reload requires (tuners.save writes it whole); BaseTuner._is_worker(),
  which tuners.save mirrors with distribution.role().
- keras_tuner.src.distribute: utils.has_chief_oracle/is_chief_oracle (search/distribution.role), the chief's
  OracleServicer (search/chief.py subclasses it) and the worker's OracleClient, its wrapped oracle
  (OracleClient._oracle) and its stub (search/worker.py); keras_tuner.src.protos' messages and gRPC service.
- BaseTuner._populate_initial_space(): called once by the tuner's __init__ to fill the oracle's space (keras-tuner
  names it a hook to override; tuners.py declares every hyperparameter there without building a model).
- BayesianOptimizationOracle._vectorize_trials() -> (x, y): the Gaussian process's training data, which
  tests/test_oracle_budget.py inspects; Oracle._set_project_dir(directory, name), used by those tests.
- A space's initial configurations (oracles.py `_initial_values`): BayesianOptimizationOracle.populate_space
  counts every COMPLETED trial among its `num_initial_points`, whatever proposed it; Oracle.reload() reads every
  trial back with the values it was created with (what "already tried" is derived from); Oracle.create_trial
  asks populate_space nothing once `max_trials` trials exist.
"""

import inspect
import json
import os
import re
from concurrent import futures
from pathlib import Path

import grpc
import keras
import keras_tuner
import pytest

from tuner_app.search import keras_tuner_internals, tuners

OBJECTIVE = keras_tuner.Objective("score", "max")


def _space(*values):
    hp = keras_tuner.HyperParameters()
    hp.Choice("x", list(values) or [0, 1, 2, 3])
    return hp


def _params(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def _oracle(kind, tmp_path, name="oracle", **options):
    oracle = kind(objective=OBJECTIVE, hyperparameters=_space(), seed=1, **options)
    oracle._set_project_dir(str(tmp_path), name)
    return oracle


def _finish(oracle, trial, score=0.5):
    oracle.update_trial(trial.trial_id, {"score": score})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)


def test_populate_initial_space_is_the_tuners_one_space_hook(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(keras_tuner.Tuner, "_populate_initial_space", lambda self: calls.append(self))
    tuner = keras_tuner.RandomSearch(lambda hp: None, objective=OBJECTIVE, max_trials=1, directory=str(tmp_path))
    assert calls == [tuner], "BaseTuner.__init__ no longer fills the space through _populate_initial_space()"


def test_set_project_dir():
    assert _params(keras_tuner.Oracle._set_project_dir) == ["self", "directory", "project_name"], \
        "Oracle._set_project_dir(directory, project_name) changed"


@pytest.mark.parametrize("kind, options", [
    (keras_tuner.oracles.RandomSearchOracle, {"max_trials": 3}),
    (keras_tuner.oracles.BayesianOptimizationOracle, {"max_trials": 3}),
    (keras_tuner.oracles.HyperbandOracle, {"max_epochs": 2}),
])
def test_random_values_is_every_oracles_random_draw(tmp_path, kind, options):
    assert _params(kind._random_values) == ["self"], "Oracle._random_values() changed its signature"

    class Drawn(kind):
        def _random_values(self):
            return {"x": 3}

    trial = _oracle(Drawn, tmp_path, **options).create_trial("tuner0")
    assert trial.hyperparameters.values["x"] == 3, f"{kind.__name__} no longer draws through Oracle._random_values"


def test_random_values_skips_what_duplicate_turns_down_and_gives_none_when_spent(tmp_path):
    assert _params(keras_tuner.Oracle._duplicate) == ["self", "values"], "Oracle._duplicate(values) changed"

    class OnlyThree(keras_tuner.oracles.RandomSearchOracle):
        def _duplicate(self, values):
            return values["x"] != 3

    assert keras_tuner_internals.random_values(_oracle(OnlyThree, tmp_path, max_trials=3)) == {"x": 3}, \
        "Oracle._random_values no longer redraws what Oracle._duplicate turns down"

    class Spent(keras_tuner.oracles.RandomSearchOracle):
        def _duplicate(self, values):
            return True

    assert keras_tuner_internals.random_values(_oracle(Spent, tmp_path, max_trials=3)) is None, \
        "Oracle._random_values no longer returns None when every draw is a duplicate"


def test_duplicate_is_what_was_tried_and_super_reaches_keras_tuners_own(tmp_path):
    class Ours(keras_tuner.oracles.RandomSearchOracle):  # as oracles.BudgetMixin calls it: on super()
        def _random_values(self):
            return keras_tuner_internals.random_values(super())

        def _duplicate(self, values):
            return keras_tuner_internals.is_duplicate(super(), values)

    oracle = _oracle(Ours, tmp_path, max_trials=3)
    tried = oracle.create_trial("tuner0").hyperparameters.values
    assert oracle._duplicate(tried) and not oracle._duplicate({"x": 4}), \
        "Oracle._duplicate(values) no longer tells the values of an existing trial"
    assert oracle._random_values() not in (None, tried), "Oracle._random_values, called on super(), changed"


def test_reload_retries_the_states_ongoing_trials_and_the_retry_queue_first(tmp_path):
    oracle = _oracle(keras_tuner.oracles.RandomSearchOracle, tmp_path, max_trials=3)
    running = oracle.create_trial("tuner0")
    oracle.save()
    state = oracle.get_state()
    assert state["ongoing_trials"] == {"tuner0": running.trial_id} and state["retry_queue"] == [], \
        "Oracle.get_state()'s 'ongoing_trials' (tuner id -> trial id) or 'retry_queue' changed"
    again = _oracle(keras_tuner.oracles.RandomSearchOracle, tmp_path, max_trials=3)
    again.reload()
    assert again.create_trial("tuner0").trial_id == running.trial_id, \
        "Oracle.reload no longer queues the state's 'ongoing_trials' for retry ('retry_queue')"


def test_retry_queue_is_handed_out_last_first_before_new_trials(tmp_path):
    oracle = _oracle(keras_tuner.oracles.RandomSearchOracle, tmp_path, max_trials=4)
    first, second = (oracle.create_trial(tuner).trial_id for tuner in ("tuner0", "tuner1"))
    oracle.ongoing_trials.clear()  # both workers gone, as the chief drops them
    for trial_id in (first, second):
        keras_tuner_internals.queue_retry(oracle, trial_id)
    assert keras_tuner_internals.retry_queue(oracle) == [first, second] == oracle.get_state()["retry_queue"], \
        "Oracle._retry_queue is no longer the state's 'retry_queue'"
    assert oracle.create_trial("tuner2").trial_id == second, \
        "Oracle.create_trial no longer hands out Oracle._retry_queue's last trial first"
    assert keras_tuner_internals.retry_queue(oracle) == [first], \
        "Oracle.create_trial no longer pops Oracle._retry_queue"
    keras_tuner_internals.unqueue_retry(oracle, first)
    assert oracle.create_trial("tuner3").trial_id not in (first, second), \
        "a trial taken out of Oracle._retry_queue is still handed out"


def test_trial_and_oracle_files_are_what_reload_reads(tmp_path):
    oracle = _oracle(keras_tuner.oracles.RandomSearchOracle, tmp_path, max_trials=3)
    trials = [oracle.create_trial(tuner) for tuner in ("tuner0", "tuner1")]
    trials[0].status = "INVALID"
    keras_tuner_internals.save_trial(oracle, trials[0])
    assert keras_tuner_internals.trial_files(oracle) == [keras_tuner_internals.trial_file(oracle, trial.trial_id)
                                                         for trial in trials], \
        "Oracle._project_dir/trial_*/trial.json is no longer Oracle._get_trial_dir(trial_id)/trial.json"
    state = {**oracle.get_state(), "ongoing_trials": {}, "retry_queue": [trials[1].trial_id]}
    Path(keras_tuner_internals.oracle_file(oracle)).write_text(json.dumps(state))  # as oracles.py saves it
    again = _oracle(keras_tuner.oracles.RandomSearchOracle, tmp_path, max_trials=3)
    again.reload()
    assert again.trials[trials[0].trial_id].status == "INVALID", \
        "Oracle.reload no longer reads what Oracle._save_trial wrote to Oracle._get_trial_dir(trial_id)/trial.json"
    assert keras_tuner_internals.retry_queue(again) == [trials[1].trial_id], \
        "Oracle.reload no longer reads its state from Oracle._get_oracle_fname()"


def test_hyperband_bracket_arithmetic_counts_the_trials_it_runs(tmp_path):
    for name in ("_get_num_brackets", "_get_num_rounds", "_get_size"):
        assert hasattr(keras_tuner.oracles.HyperbandOracle, name), f"HyperbandOracle.{name} is gone"
    assert _params(keras_tuner.oracles.HyperbandOracle._get_size) == ["self", "bracket_num", "round_num"]
    oracle = keras_tuner.oracles.HyperbandOracle(objective=OBJECTIVE, max_epochs=4, factor=2, seed=1,
                                                 hyperparameters=_space(*range(50)))
    oracle._set_project_dir(str(tmp_path), "hyperband")
    trials = 0
    while (trial := oracle.create_trial("tuner0")).status == "RUNNING":
        _finish(oracle, trial, score=trials % 5)
        trials += 1
    assert trials == sum(keras_tuner_internals.hyperband_round_sizes(oracle)), \
        "HyperbandOracle._get_num_brackets/_get_num_rounds/_get_size no longer count its trials"


def test_hyperband_tuner_init_only_builds_its_oracle(tmp_path):
    def build(hp):
        return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])

    theirs = keras_tuner.Hyperband(build, objective=OBJECTIVE, max_epochs=2, directory=str(tmp_path), project_name="a")
    oracle = keras_tuner.oracles.HyperbandOracle(objective=OBJECTIVE, max_epochs=2)
    plain = keras_tuner.Tuner(oracle=oracle, hypermodel=build, directory=str(tmp_path), project_name="b")
    assert set(vars(theirs)) == set(vars(plain)), \
        "keras_tuner.Hyperband.__init__ now sets more than its oracle: tuners.TrialMixin.__init__ skips it"
    own = {name for name in vars(keras_tuner.Hyperband)
           if name == "__init__" or not name.startswith(("__", "_api_export"))}
    assert own == {"__init__", "run_trial", "_build_hypermodel"}, \
        f"keras_tuner.Hyperband's own members changed: {sorted(own)}"


def test_hyperband_build_hypermodel_loads_the_continued_trials_weights(tmp_path):
    def build(hp):
        return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, kernel_initializer="zeros")])

    tuner = keras_tuner.Hyperband(build, objective=OBJECTIVE, max_epochs=2, directory=str(tmp_path), project_name="c")
    trained = build(None)
    trained.layers[0].kernel.assign([[7.0]])
    trained.save_weights(keras_tuner_internals.checkpoint_file(tuner, "0"))
    with open(keras_tuner_internals.build_config_file(tuner, "0"), "w", encoding="utf-8") as stream:
        json.dump(trained.get_build_config(), stream)
    hp = keras_tuner.HyperParameters()
    hp.values["tuner/trial_id"] = "0"
    model = keras_tuner_internals.build_model(tuner, hp)
    assert float(model.layers[0].kernel[0, 0]) == 7.0, \
        "keras_tuner.Hyperband._build_hypermodel (through Tuner._try_build) no longer loads tuner/trial_id's weights"


def test_tuner_file_names_and_try_build(tmp_path):
    tuner = keras_tuner.RandomSearch(lambda hp: keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]),
                                     objective=OBJECTIVE, max_trials=1, directory=str(tmp_path), project_name="d")
    trial_dir, checkpoint = tuner.get_trial_dir("0"), keras_tuner_internals.checkpoint_file(tuner, "0")
    assert os.path.dirname(checkpoint) == trial_dir, "Tuner._get_checkpoint_fname changed"
    assert checkpoint.endswith(".weights.h5"), "Tuner._get_checkpoint_fname changed"
    assert keras_tuner_internals.build_config_file(tuner, "0") == os.path.join(trial_dir, "build_config.json"), \
        "Tuner._get_build_config_fname changed"
    assert _params(keras_tuner.Tuner._try_build) == ["self", "hp"], "Tuner._try_build(hp) changed"
    assert isinstance(keras_tuner_internals.build_model(tuner, keras_tuner.HyperParameters()), keras.Model), \
        "Tuner._try_build changed"


def test_a_project_is_reloaded_only_where_its_tuner_file_exists(tmp_path):
    def tuner():
        return keras_tuner.RandomSearch(lambda hp: None, objective=OBJECTIVE, max_trials=2, directory=str(tmp_path),
                                        project_name="e")

    first = tuner()
    assert keras_tuner_internals.tuner_file(first) == str(tmp_path / "e" / "tuner0.json"), \
        "BaseTuner._get_tuner_fname changed"
    first.oracle.create_trial("tuner0")
    first.save()
    assert len(tuner().oracle.trials) == 1, "BaseTuner no longer reloads a project from its files"
    Path(keras_tuner_internals.tuner_file(first)).unlink()
    assert tuner().oracle.trials == {}, "BaseTuner now reloads a project without BaseTuner._get_tuner_fname()"


def test_vectorize_trials_is_the_gaussian_process_data(tmp_path):
    oracle = _oracle(keras_tuner.oracles.BayesianOptimizationOracle, tmp_path, max_trials=3)
    _finish(oracle, oracle.create_trial("tuner0"), score=0.75)
    x, y = keras_tuner_internals.gaussian_process_data(oracle)
    assert x.shape == (1, 1) and list(y) == [-0.75], \
        "BayesianOptimizationOracle._vectorize_trials() no longer returns (x, y) with y the negated max objective"


def test_bayesian_counts_every_completed_trial_among_its_initial_points(tmp_path):
    drawn = []

    class Listed(keras_tuner.oracles.BayesianOptimizationOracle):
        def populate_space(self, trial_id):  # as oracles.py proposes an initial configuration: no random draw
            if len(self.trials) < 2:
                return {"status": "RUNNING", "values": {"x": len(self.trials)}}
            return super().populate_space(trial_id)

        def _random_values(self):
            drawn.append(True)
            return super()._random_values()

    oracle = _oracle(Listed, tmp_path, max_trials=3, num_initial_points=2)
    fitted, fit = [], oracle.gpr.fit
    oracle.gpr.fit = lambda x, y: (fitted.append(len(y)), fit(x, y))[1]
    for score in (0.2, 0.8, 0.5):
        _finish(oracle, oracle.create_trial("tuner0"), score=score)
    assert not drawn and fitted == [2], \
        "BayesianOptimizationOracle.populate_space no longer counts completed trials as its initial points"


def test_reload_reads_every_trial_back_with_its_values(tmp_path):
    oracle = _oracle(keras_tuner.oracles.RandomSearchOracle, tmp_path, max_trials=3)
    created = [oracle.create_trial("tuner0") for _ in range(2)]
    _finish(oracle, created[0])
    _finish(oracle, created[1])
    again = _oracle(keras_tuner.oracles.RandomSearchOracle, tmp_path, max_trials=3)
    again.reload()
    assert {trial_id: trial.hyperparameters.values for trial_id, trial in again.trials.items()} == {
        trial.trial_id: trial.hyperparameters.values for trial in created}, \
        "Oracle.reload() no longer reads every trial back into oracle.trials with its values"


def test_create_trial_asks_nothing_once_max_trials_exist(tmp_path):
    asked = []

    class Counted(keras_tuner.oracles.RandomSearchOracle):
        def populate_space(self, trial_id):
            asked.append(trial_id)
            return super().populate_space(trial_id)

    oracle = _oracle(Counted, tmp_path, max_trials=1)
    _finish(oracle, oracle.create_trial("tuner0"))
    assert oracle.create_trial("tuner0").status == "STOPPED" and len(asked) == 1, \
        "Oracle.create_trial no longer stops at max_trials before asking populate_space"


def test_the_chief_and_worker_roles_come_from_keras_tuners_variables(tmp_path, monkeypatch):
    for name in ("KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
        monkeypatch.delenv(name, raising=False)
    roles = [(keras_tuner_internals.has_chief_oracle(), keras_tuner_internals.is_chief_oracle())]
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    for tuner_id in ("chief", "w1"):
        monkeypatch.setenv("KERASTUNER_TUNER_ID", tuner_id)
        tuner = keras_tuner.RandomSearch(lambda hp: None, objective=OBJECTIVE, max_trials=1, directory=str(tmp_path),
                                         project_name=tuner_id)
        roles.append((keras_tuner_internals.has_chief_oracle(), keras_tuner_internals.is_chief_oracle()))
        assert tuner._is_worker() == (roles[-1] == (True, False)), \
            "BaseTuner._is_worker() is no longer has_chief_oracle() and not is_chief_oracle() (tuners.save)"
    assert roles == [(False, False), (True, True), (True, False)], \
        "keras_tuner.src.distribute.utils.has_chief_oracle/is_chief_oracle changed"


def test_a_workers_tuner_wraps_its_oracle_in_the_oracle_client(tmp_path, monkeypatch):
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "w1")
    oracle = _oracle(keras_tuner.oracles.RandomSearchOracle, tmp_path, max_trials=1)
    tuner = keras_tuner.Tuner(oracle=oracle, hypermodel=lambda hp: None, directory=str(tmp_path), project_name="f")
    assert isinstance(tuner.oracle, keras_tuner_internals.OracleClient), \
        "a worker's tuner no longer wraps its oracle in keras_tuner.src.distribute.oracle_client.OracleClient"
    assert keras_tuner_internals.wrapped_oracle(tuner.oracle) is oracle, "OracleClient._oracle changed"
    assert all(hasattr(tuner.oracle.stub, call) for call in ("EndTrial", "GetTrial")), "OracleClient.stub changed"


def test_the_oracle_servicer_answers_with_keras_tuners_messages(tmp_path):
    oracle = _oracle(keras_tuner.oracles.RandomSearchOracle, tmp_path, max_trials=1)
    servicer = keras_tuner_internals.OracleServicer(oracle)
    assert servicer.oracle is oracle and servicer.stop_triggered is False, \
        "OracleServicer no longer keeps .oracle and .stop_triggered"
    messages = keras_tuner_internals.service_messages()
    created = oracle.create_trial("w1")
    answer = servicer.GetTrial(messages.GetTrialRequest(trial_id=created.trial_id), None)
    assert keras_tuner.engine.trial.Trial.from_proto(answer.trial).trial_id == created.trial_id, \
        "OracleServicer.GetTrial or keras_tuner.src.protos' GetTrialRequest changed"
    oracle.update_trial(created.trial_id, {"score": 0.5})
    created.status = "COMPLETED"
    servicer.EndTrial(messages.EndTrialRequest(trial=created.to_proto()), None)
    assert oracle.end_order == [created.trial_id], "OracleServicer.EndTrial or EndTrialRequest changed"
    for message in ("CreateTrialResponse", "EndTrialResponse"):
        assert hasattr(messages, message), f"keras_tuner.src.protos.get_service().{message} is gone"
    service = keras_tuner_internals.service_grpc()
    service.add_OracleServicer_to_server(servicer, grpc.server(futures.ThreadPoolExecutor(max_workers=1)))
    assert hasattr(service, "OracleStub"), "keras_tuner.src.protos.get_service_grpc().OracleStub is gone"


def test_every_entry_of_the_adapter_is_pinned_here():
    entries = [name for name, value in vars(keras_tuner_internals).items() if not name.startswith("_")
               and (inspect.isfunction(value) or inspect.isclass(value))  # its own, and keras-tuner's classes
               and value.__module__.startswith((keras_tuner_internals.__name__, "keras_tuner."))]
    assert len(entries) > 20
    this = Path(__file__).read_text(encoding="utf-8")
    assert [name for name in entries if not re.search(rf"keras_tuner_internals\.{name}\b", this)] == [], \
        "an entry of search/keras_tuner_internals.py no test here exercises"
