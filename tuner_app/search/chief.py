"""The chief of a distributed search: keras-tuner's own gRPC oracle service (its OracleServicer), served with
what keras-tuner's start_server lacks:

- a trial whose worker stops answering (killed, its machine gone) is retried by another worker, and failed
  after MAX_LOSSES such losses, instead of keeping the search waiting for it forever;
- a restarted chief lets each worker finish the trial it was training when the chief stopped;
- no worker is told to stop while another worker's trial may still need a retry;
- the search's observers hear trials begin and end and configurations turned away; Ctrl-C stops it.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from concurrent import futures
from typing import Callable, Iterable

import grpc
from keras_tuner.engine import trial as trial_module

from tuner_app.errors import TunerAppError
from tuner_app.search import interrupts, keras_tuner_internals
from tuner_app.search.distribution import quiet_protos

# How a stopping worker hands its unfinished trial back (worker.give_back): keras-tuner's workers never end a
# trial STOPPED, and a trial's message does not travel over gRPC (keras-tuner's Trial proto has no field for it).
GIVEN_BACK = trial_module.TrialStatus.STOPPED
MAX_LOSSES = 2  # a trial that has lost its worker this often is FAILED: it may be what kills them
POLL_SECONDS = 0.5
STOP_GRACE_SECONDS = 10.0  # at most this long for answers under way when the chief stops
Status = trial_module.TrialStatus


class ChiefServicer(keras_tuner_internals.OracleServicer):
    """keras-tuner's servicer; every call also tells the chief that the trial (or worker) it names is alive."""

    def __init__(self, oracle, worker_timeout: float, clock: Callable[[], float] = time.monotonic):
        super().__init__(oracle)
        self.worker_timeout, self.clock = worker_timeout, clock
        self.lock = threading.RLock()
        self.started = clock()
        self.heard: dict[str, float] = {}  # trial id or tuner id -> when the chief last heard of it
        # tuner id -> the trial it trained when an earlier chief stopped: kept for that worker for a while
        self.reserved: dict[str, str] = dict(getattr(oracle, "reclaimable", {}))
        self.losses: collections.Counter = collections.Counter()
        self.lost: list[tuple] = []  # (trial, reason, retried) the observers have not heard of yet
        # Retries held back until the observers have logged the loss: a retry handed out at once could open its
        # run while the loss is being logged, and the lost run would end with the retry's reason, not its own.
        self.unreported: set[str] = set()

    def GetSpace(self, request, context):
        with self.lock, quiet_protos():
            return super().GetSpace(request, context)

    def UpdateSpace(self, request, context):
        with self.lock, quiet_protos():
            return super().UpdateSpace(request, context)

    def CreateTrial(self, request, context):
        with self.lock, quiet_protos():
            tuner_id = request.tuner_id
            self.heard[tuner_id] = self.clock()
            self._reclaim(self.reserved.get(tuner_id))
            with self._withheld(tuner_id) as withheld:
                trial = self.oracle.create_trial(tuner_id)
            if trial.status == Status.STOPPED and (self.oracle.ongoing_trials or withheld):
                # keras-tuner would let this worker go; a trial still training elsewhere may be lost and need it,
                # and a withheld retry will.
                self.oracle.tuner_ids.add(tuner_id)
                trial.status = Status.IDLE
            self.stop_triggered |= trial.status == Status.STOPPED
            if trial.status == Status.RUNNING:
                self.heard[trial.trial_id] = self.clock()
            return keras_tuner_internals.service_messages().CreateTrialResponse(trial=trial.to_proto())

    def UpdateTrial(self, request, context):
        with self.lock, quiet_protos():
            self._hear_trial(request.trial_id)
            return super().UpdateTrial(request, context)

    def GetTrial(self, request, context):  # a training worker's heartbeat
        with self.lock, quiet_protos():
            self._hear_trial(request.trial_id)
            return super().GetTrial(request, context)

    def EndTrial(self, request, context):
        with self.lock, quiet_protos():
            trial = trial_module.Trial.from_proto(request.trial)
            self._hear_trial(trial.trial_id)
            if trial.status == GIVEN_BACK:
                self._lose(trial.trial_id, f"worker {self._owner(trial.trial_id)} stopped before the trial ended")
            elif trial.trial_id not in self.oracle.end_order:  # a second report of a retried trial is dropped
                self.oracle.end_trial(trial)
            return keras_tuner_internals.service_messages().EndTrialResponse()

    def _owner(self, trial_id: str) -> str | None:
        return next((tuner for tuner, trial in self.oracle.ongoing_trials.items() if trial.trial_id == trial_id), None)

    def _hear_trial(self, trial_id: str) -> None:
        self.heard[trial_id] = self.clock()
        self._reclaim(trial_id)

    def _reclaim(self, trial_id: str | None) -> None:
        """A trial an earlier chief left training is heard of again: back to its worker, not retried."""
        owner = next((tuner for tuner, reserved in self.reserved.items() if reserved == trial_id), None)
        if owner is None:
            return
        del self.reserved[owner]
        if trial_id in keras_tuner_internals.retry_queue(self.oracle):
            keras_tuner_internals.unqueue_retry(self.oracle, trial_id)
            trial = self.oracle.trials[trial_id]
            trial.status = Status.RUNNING
            self.oracle.ongoing_trials[owner] = trial
            self.oracle.tuner_ids.add(owner)
            self.oracle.save()

    @contextlib.contextmanager
    def _withheld(self, tuner_id: str):
        """Retries not handed out yet: other workers' reserved trials (their workers may still come back), and
        lost trials whose loss the observers have not logged."""
        reserved = {trial_id for owner, trial_id in self.reserved.items() if owner != tuner_id}
        hidden = [trial_id for trial_id in keras_tuner_internals.retry_queue(self.oracle)
                  if trial_id in reserved or trial_id in self.unreported]
        for trial_id in hidden:
            keras_tuner_internals.unqueue_retry(self.oracle, trial_id)
        try:
            yield hidden
        finally:
            for trial_id in hidden:
                keras_tuner_internals.queue_retry(self.oracle, trial_id)

    def reported(self, trial_ids: Iterable[str]) -> None:
        """The observers have logged these trials' losses: their retries may be handed out."""
        with self.lock:
            self.unreported.difference_update(trial_ids)

    def reap(self) -> None:
        """Give up the trials (and idle workers) unheard of for worker_timeout seconds."""
        with self.lock:
            now = self.clock()
            for tuner_id, trial in list(self.oracle.ongoing_trials.items()):
                if now - self.heard.get(trial.trial_id, self.started) > self.worker_timeout:
                    self._lose(trial.trial_id, f"worker {tuner_id} stopped answering for {self.worker_timeout:g} s")
            for tuner_id in list(self.oracle.tuner_ids):
                idle = tuner_id not in self.oracle.ongoing_trials
                if idle and now - self.heard.get(tuner_id, self.started) > self.worker_timeout:
                    self.oracle.tuner_ids.discard(tuner_id)
            if now - self.started > self.worker_timeout:
                self.reserved.clear()

    def _lose(self, trial_id: str, reason: str) -> None:
        """The trial's worker is gone: retry it, or fail it after MAX_LOSSES."""
        oracle = self.oracle
        for tuner_id, ongoing in list(oracle.ongoing_trials.items()):
            if ongoing.trial_id == trial_id:
                del oracle.ongoing_trials[tuner_id]
                oracle.tuner_ids.discard(tuner_id)
        if trial_id in oracle.end_order or trial_id in keras_tuner_internals.retry_queue(oracle):
            return
        trial = oracle.trials[trial_id]
        self.losses[trial_id] += 1
        retried = self.losses[trial_id] < MAX_LOSSES
        trial.status, trial.message = (Status.INVALID if retried else Status.FAILED), reason
        if retried:
            keras_tuner_internals.queue_retry(oracle, trial_id)
            self.unreported.add(trial_id)
            keras_tuner_internals.save_trial(oracle, trial)
            oracle.save()
        else:
            oracle.end_trial(trial)
        self.lost.append((trial, reason, retried))

    def finished(self) -> bool:
        with self.lock:
            return self.stop_triggered and not self.oracle.ongoing_trials and not self.oracle.tuner_ids


def serve(oracle, address: str, worker_timeout: float, relay: Callable[[ChiefServicer], None]) -> None:
    """Serve the oracle on address (HOST:PORT) until every trial has ended and every worker was told to stop;
    `relay(servicer)` runs every POLL_SECONDS, in this thread, to report what happened."""
    servicer = ChiefServicer(oracle, worker_timeout)
    # Without so_reuseport a second chief on the same port fails here instead of sharing it with the first.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=[("grpc.so_reuseport", 0)])
    keras_tuner_internals.service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:
        bound = 0
    if not bound:
        raise TunerAppError(f"--oracle {address}: the chief cannot listen there (port in use, or not an address "
                            "of this machine)")
    server.start()
    try:
        while not servicer.finished():
            time.sleep(POLL_SECONDS)
            interrupts.check_stop()
            servicer.reap()
            relay(servicer)
        relay(servicer)
    finally:
        # Answers still on their way (the last worker's STOPPED, on a loaded machine) go out before the server
        # does: stopped without grace, it cancels them and that worker exits with "the chief does not answer".
        server.stop(grace=STOP_GRACE_SECONDS).wait()
        with servicer.lock:
            oracle.save()


class Relay:
    """Tells the chief's observers (progress, the MLflow parent run) what the workers did, from the oracle."""

    def __init__(self, tuner):
        self.tuner = tuner
        self.begun, self.ended = set(tuner.oracle.start_order), set(tuner.oracle.end_order)

    def __call__(self, servicer: ChiefServicer) -> None:
        with servicer.lock:
            oracle = servicer.oracle
            begun = [oracle.trials[trial_id] for trial_id in oracle.start_order if trial_id not in self.begun]
            ended = [oracle.trials[trial_id] for trial_id in oracle.end_order if trial_id not in self.ended]
            lost, servicer.lost = servicer.lost, []
        self.tuner.report_rejections()
        for trial in begun:
            self.begun.add(trial.trial_id)
            self.tuner.notify("trial_begin", trial)
        for trial, reason, retried in lost:
            self.tuner.notify("trial_lost", trial, reason, retried)
        servicer.reported(trial.trial_id for trial, _, _ in lost)
        for trial in ended:
            self.ended.add(trial.trial_id)
            status = "COMPLETED" if trial.status == Status.COMPLETED else "FAILED"
            self.tuner.report_end(trial, status, "" if status == "COMPLETED" else last_line(trial.message))


def last_line(message: str | None) -> str:
    """The last non-blank line of a trial's message (keras-tuner keeps a whole traceback there)."""
    lines = [line for line in str(message or "").splitlines() if line.strip()]
    return lines[-1] if lines else "failed"
