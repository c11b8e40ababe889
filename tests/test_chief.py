"""The chief's oracle service (search/chief.py) without processes or training: a silent worker's trial is
retried then failed, a trial given back is retried at once, no worker is let go while a trial may need it,
and a restarted chief lets each worker finish the trial it was training."""

import grpc
import keras_tuner
import pytest
from conftest import make_oracle, smoke_space

from tuner_app.search import chief, oracles
from tuner_app.search.keras_tuner_internals import retry_queue, service_grpc, service_messages

TIMEOUT = 10.0


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _oracle(tmp_path, trials=3, reload=False):
    oracle = make_oracle(oracles.RandomSearchOracle, smoke_space(), None, max_trials=trials, seed=1)
    oracle._set_project_dir(str(tmp_path), "chief")
    if reload:
        oracle.reload()
    return oracle


def _servicer(oracle):
    clock = Clock()
    return chief.ChiefServicer(oracle, TIMEOUT, clock=clock), clock


def _ask(servicer, tuner_id):
    response = servicer.CreateTrial(service_messages().CreateTrialRequest(tuner_id=tuner_id), None)
    trial = keras_tuner.engine.trial.Trial.from_proto(response.trial)
    return trial.status, trial.trial_id


def _finish(servicer, trial_id, status="COMPLETED"):
    service = service_messages()
    servicer.UpdateTrial(service.UpdateTrialRequest(trial_id=trial_id, metrics={"val_accuracy": 0.5}), None)
    trial = servicer.oracle.trials[trial_id]
    ended = keras_tuner.engine.trial.Trial(trial.hyperparameters, trial_id=trial_id, status=status)
    servicer.EndTrial(service.EndTrialRequest(trial=ended.to_proto()), None)


def test_a_silent_workers_trial_is_retried_by_another_then_failed_after_two_losses(tmp_path):
    servicer, clock = _servicer(_oracle(tmp_path))
    assert _ask(servicer, "w1") == ("RUNNING", "0")
    clock.now = TIMEOUT - 1
    servicer.GetTrial(service_messages().GetTrialRequest(trial_id="0"), None)  # its heartbeat
    clock.now = TIMEOUT + 2
    servicer.reap()
    assert servicer.lost == []  # heard of 3 s ago
    clock.now = 2 * TIMEOUT
    servicer.reap()
    (trial, reason, retried), = servicer.lost
    assert (trial.trial_id, retried) == ("0", True) and reason == "worker w1 stopped answering for 10 s"
    assert "w1" not in servicer.oracle.tuner_ids  # the chief does not wait for it to ask for more
    assert _ask(servicer, "w2") == ("RUNNING", "1")  # the retry waits until the observers have logged the loss
    servicer.reported(["0"])
    assert _ask(servicer, "w3") == ("RUNNING", "0")  # then it is handed out first
    clock.now = 4 * TIMEOUT
    servicer.reap()
    assert [retried for lost, _, retried in servicer.lost if lost.trial_id == "0"] == [True, False]
    assert servicer.oracle.trials["0"].status == "FAILED" and "0" in servicer.oracle.end_order


def test_a_trial_given_back_is_retried_at_once_and_a_late_second_report_is_dropped(tmp_path):
    servicer, _ = _servicer(_oracle(tmp_path))
    assert _ask(servicer, "w1") == ("RUNNING", "0")
    _finish(servicer, "0", chief.GIVEN_BACK)  # what a worker's Ctrl-C sends (worker.WorkerOracle.give_back)
    assert retry_queue(servicer.oracle) == ["0"]
    assert [(trial.trial_id, reason, retried) for trial, reason, retried in servicer.lost] == [
        ("0", "worker w1 stopped before the trial ended", True)]
    servicer.reported(["0"])
    assert _ask(servicer, "w2") == ("RUNNING", "0")
    _finish(servicer, "0")
    _finish(servicer, "0")  # the same result reported twice (a retried worker that came back)
    assert servicer.oracle.end_order == ["0"] and servicer.oracle.trials["0"].status == "COMPLETED"


def test_no_worker_is_let_go_while_another_trial_may_still_need_a_retry(tmp_path):
    servicer, _ = _servicer(_oracle(tmp_path, trials=1))
    assert _ask(servicer, "w1") == ("RUNNING", "0")
    assert _ask(servicer, "w2")[0] == "IDLE" and not servicer.finished()
    _finish(servicer, "0")
    assert _ask(servicer, "w2")[0] == "STOPPED" and not servicer.finished()  # w1 has not been told yet
    assert _ask(servicer, "w1")[0] == "STOPPED" and servicer.finished()


def test_no_worker_is_let_go_while_a_lost_trials_retry_is_withheld(tmp_path):
    servicer, clock = _servicer(_oracle(tmp_path, trials=1))
    assert _ask(servicer, "w1") == ("RUNNING", "0")
    clock.now = 2 * TIMEOUT
    servicer.reap()
    assert _ask(servicer, "w2")[0] == "IDLE"  # the only trial is lost, its loss not yet logged
    servicer.reported(["0"])
    assert _ask(servicer, "w2") == ("RUNNING", "0")


def test_a_restarted_chief_keeps_each_workers_trial_for_it(tmp_path):
    first, _ = _servicer(_oracle(tmp_path))
    assert [_ask(first, worker) for worker in ("w1", "w2")] == [("RUNNING", "0"), ("RUNNING", "1")]
    _finish(first, "1")  # w2 is done; w1 trains on while the chief is killed
    restarted, clock = _servicer(_oracle(tmp_path, reload=True))
    assert restarted.reserved == {"w1": "0"}
    assert _ask(restarted, "w2") == ("RUNNING", "2")  # not w1's trial
    restarted.GetTrial(service_messages().GetTrialRequest(trial_id="0"), None)  # w1's heartbeat reaches it
    assert restarted.oracle.ongoing_trials["w1"].trial_id == "0" and retry_queue(restarted.oracle) == []
    _finish(restarted, "0")
    assert sorted(restarted.oracle.end_order) == ["0", "1"]


def test_a_worker_that_never_comes_back_leaves_its_trial_to_the_others(tmp_path):
    first, _ = _servicer(_oracle(tmp_path))
    _ask(first, "w1")
    restarted, clock = _servicer(_oracle(tmp_path, reload=True))
    assert _ask(restarted, "w2") == ("RUNNING", "1")
    _finish(restarted, "1")
    clock.now = TIMEOUT + 1
    restarted.reap()  # the reservation expired
    assert _ask(restarted, "w2") == ("RUNNING", "0")


def test_a_chief_that_cannot_listen_says_where(tmp_path):
    import socket

    from tuner_app.errors import TunerAppError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        for address in (f"127.0.0.1:{taken.getsockname()[1]}", "192.0.2.1:8000"):  # in use; not this machine's
            with pytest.raises(TunerAppError, match=f"--oracle {address}: the chief cannot listen there"):
                chief.serve(_oracle(tmp_path), address, TIMEOUT, relay=lambda servicer: None)


def test_the_last_worker_hears_stopped_even_while_the_chief_shuts_down(tmp_path, monkeypatch):
    import threading
    import time

    import grpc
    from conftest import free_port

    answer = chief.ChiefServicer.CreateTrial

    def slow_to_answer(self, request, context):  # a loaded machine: the answer leaves after the chief saw the end
        response = answer(self, request, context)
        if keras_tuner.engine.trial.Trial.from_proto(response.trial).status == "STOPPED":
            time.sleep(3 * chief.POLL_SECONDS)
        return response

    monkeypatch.setattr(chief.ChiefServicer, "CreateTrial", slow_to_answer)
    address = f"127.0.0.1:{free_port()}"
    serving = threading.Thread(target=chief.serve, args=(_oracle(tmp_path, trials=1), address, TIMEOUT, lambda s: None))
    serving.start()
    service, stub = service_messages(), service_grpc().OracleStub(grpc.insecure_channel(address))
    first = stub.CreateTrial(service.CreateTrialRequest(tuner_id="w1"), wait_for_ready=True, timeout=30)
    trial = keras_tuner.engine.trial.Trial.from_proto(first.trial)
    stub.UpdateTrial(service.UpdateTrialRequest(trial_id=trial.trial_id, metrics={"val_accuracy": 0.5}), timeout=30)
    trial.status = "COMPLETED"
    stub.EndTrial(service.EndTrialRequest(trial=trial.to_proto()), timeout=30)
    last = stub.CreateTrial(service.CreateTrialRequest(tuner_id="w1"), timeout=30)  # not cut off by the shutdown
    assert keras_tuner.engine.trial.Trial.from_proto(last.trial).status == "STOPPED"
    serving.join(30)
    assert not serving.is_alive()


class _Cut(grpc.RpcError):
    """What a worker's call raises when the chief dies while answering it, or is not there at all."""

    def __init__(self, code):
        self._code = code

    def code(self):
        return self._code


def test_a_call_cut_off_by_a_dying_chief_is_made_again_and_a_chief_gone_for_good_is_one_line(monkeypatch):
    from tuner_app.search import worker

    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    cuts = [_Cut(grpc.StatusCode.UNAVAILABLE)]  # the chief killed mid-answer, then restarted (CI saw a worker exit)

    def call(trial_id):
        if cuts:
            raise cuts.pop()
        return f"trial {trial_id}"

    assert worker._answered(call, "3") == "trial 3"
    for codes in ([grpc.StatusCode.UNAVAILABLE] * 2, [grpc.StatusCode.DEADLINE_EXCEEDED]):
        cuts[:] = [_Cut(code) for code in codes]
        with pytest.raises(worker.ChiefUnreachable, match="does not answer"):
            worker._answered(call, "3")
        assert cuts == []  # UNAVAILABLE twice, or the hour of waiting over: no third try
