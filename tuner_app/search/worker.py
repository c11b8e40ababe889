"""A worker of a distributed search: keras-tuner's OracleClient (every oracle call goes to the chief over
gRPC), with a heartbeat while a trial trains, a pause when the chief has nothing to hand out yet, the
search's trials read back from the shared results directory, and a way to give a trial back on Ctrl-C."""

from __future__ import annotations

import threading
import time

import grpc
import keras_tuner
from keras_tuner.engine import trial as trial_module

from tuner_app.errors import TunerAppError
from tuner_app.search import keras_tuner_internals
from tuner_app.search.chief import GIVEN_BACK
from tuner_app.search.distribution import HEARTBEAT_SECONDS, oracle_address, quiet_protos

IDLE_PAUSE_SECONDS = 1.0  # keras-tuner's loop asks again at once when the chief answers IDLE
CALL_ATTEMPTS = 2  # a call cut off by a chief that died answering it is made once more (see _answered)
GIVE_BACK_TIMEOUT = 5.0  # a stopping worker does not wait long for a chief that is down: it reaps the trial


class ChiefUnreachable(TunerAppError, keras_tuner.errors.FatalError):
    """The chief did not answer: the search stops (keras-tuner re-raises a FatalError instead of failing a trial)."""


class WorkerOracle(keras_tuner_internals.OracleClient):
    """The chief's oracle, seen from a worker. `local` is the worker's own copy of the oracle (never asked
    for trials): it answers what needs no chief, such as the seed and the trial budget."""

    def __init__(self, client: keras_tuner_internals.OracleClient):
        self.local = keras_tuner_internals.wrapped_oracle(client)
        super().__init__(self.local)
        self._beating: threading.Event | None = None

    @property
    def seed(self):
        return self.local.seed

    @property
    def trials(self) -> dict:
        """Every trial of the search, as the chief last saved it in the shared results directory."""
        found = {}
        for path in keras_tuner_internals.trial_files(self.local):
            try:
                trial = trial_module.Trial.load(path)
            except (OSError, ValueError, KeyError):  # the chief is rewriting it this very moment
                continue
            found[trial.trial_id] = trial
        return found

    def create_trial(self, tuner_id):
        trial = _answered(super().create_trial, tuner_id)
        if trial.status == trial_module.TrialStatus.IDLE:
            time.sleep(IDLE_PAUSE_SECONDS)
        elif trial.status == trial_module.TrialStatus.RUNNING:
            self._start_heartbeat(trial.trial_id)
        return trial

    def update_trial(self, trial_id, metrics, step=0):
        return _answered(super().update_trial, trial_id, metrics, step=step)

    def get_trial(self, trial_id):
        return _answered(super().get_trial, trial_id)

    def end_trial(self, trial):
        self._stop_heartbeat()
        _answered(super().end_trial, trial)

    def give_back(self, trial) -> None:
        """Hand an unfinished trial back to the chief (Ctrl-C, kill), for another worker to retry; a chief that
        does not answer at once will notice the silence instead."""
        self._stop_heartbeat()
        given = trial_module.Trial(trial.hyperparameters, trial_id=trial.trial_id, status=GIVEN_BACK)
        try:
            with quiet_protos():
                request = keras_tuner_internals.service_messages().EndTrialRequest(trial=given.to_proto())
            self.stub.EndTrial(request, timeout=GIVE_BACK_TIMEOUT)
        except grpc.RpcError:
            pass

    def _start_heartbeat(self, trial_id: str) -> None:
        self._stop_heartbeat()
        self._beating = threading.Event()
        threading.Thread(target=self._beat, args=(trial_id, self._beating), daemon=True,
                         name=f"heartbeat-{trial_id}").start()

    def _stop_heartbeat(self) -> None:
        if self._beating is not None:
            self._beating.set()
            self._beating = None

    def _beat(self, trial_id: str, stopped: threading.Event) -> None:
        request = keras_tuner_internals.service_messages().GetTrialRequest(trial_id=trial_id)
        while not stopped.wait(HEARTBEAT_SECONDS):
            try:
                self.stub.GetTrial(request, timeout=10 * HEARTBEAT_SECONDS)
            except grpc.RpcError:  # the chief is restarting: the trial's own calls wait for it
                continue


def _answered(call, *args, **kwargs):
    """An OracleClient call; a chief that never answers (keras-tuner waits an hour) as one clear line. A call
    cut off by a chief killed while answering it is made once more: keras-tuner's wait_for_ready covers only
    a chief that is down when a call starts, and the restarted chief answers it (its trials are in the
    shared results directory; a trial handed out twice is retried as any lost one is)."""
    for attempt in range(CALL_ATTEMPTS):
        try:
            with quiet_protos():
                return call(*args, **kwargs)
        except grpc.RpcError as error:
            if attempt == CALL_ATTEMPTS - 1 or error.code() != grpc.StatusCode.UNAVAILABLE:
                raise _unreachable(error) from None


def _unreachable(error: grpc.RpcError) -> ChiefUnreachable:
    return ChiefUnreachable(f"the chief at {oracle_address()} does not answer ({error.code().name}); start it "
                            "(`tuner-app search --chief`), then this worker again: finished trials are kept")

