"""Which part of a distributed search this process plays, read from keras-tuner's own environment:
KERASTUNER_TUNER_ID ("chief" runs the oracle, any other id runs trials), KERASTUNER_ORACLE_IP and
KERASTUNER_ORACLE_PORT (where the chief's oracle listens). Without them a search runs alone ("solo")."""

from __future__ import annotations

import contextlib
import io
import os

from tuner_app.errors import TunerAppError
from tuner_app.search import keras_tuner_internals

CHIEF_ID = "chief"
DEFAULT_ORACLE = "127.0.0.1:8000"
# A worker's trial is given up as lost when the chief has heard nothing of it for this long (its worker
# died with the machine, or was killed with SIGKILL); it is then retried by another worker.
DEFAULT_WORKER_TIMEOUT = 60.0
HEARTBEAT_SECONDS = 2.0  # how often a worker tells the chief its trial is still training


def role() -> str:
    """"chief", "worker" or "solo", as keras-tuner itself decides from the environment."""
    if not keras_tuner_internals.has_chief_oracle():
        return "solo"
    return "chief" if keras_tuner_internals.is_chief_oracle() else "worker"


def oracle_address() -> str:
    """HOST:PORT of the chief's oracle (a distributed search only)."""
    return f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"


def environment(chief: bool, worker_id: str | None, address: str | None) -> dict[str, str]:
    """keras-tuner's variables for `search --chief` or `--worker ID` with `--oracle HOST:PORT` (default: the
    variables already set, else 127.0.0.1:8000); empty for a search that runs alone."""
    if chief and worker_id:
        raise TunerAppError("--chief and --worker: a process is one or the other")
    if not chief and worker_id is None:
        return {}
    if worker_id is not None and (not worker_id.strip() or CHIEF_ID in worker_id):
        raise TunerAppError(f"--worker {worker_id!r}: a worker id must be non-empty and must not contain "
                            f"{CHIEF_ID!r} (keras-tuner would take it for the chief)")
    host, port = _split_address(address or _address_from_environment())
    return {"KERASTUNER_TUNER_ID": CHIEF_ID if chief else worker_id, "KERASTUNER_ORACLE_IP": host,
            "KERASTUNER_ORACLE_PORT": port}


def _address_from_environment() -> str:
    host, port = os.environ.get("KERASTUNER_ORACLE_IP"), os.environ.get("KERASTUNER_ORACLE_PORT")
    return f"{host}:{port}" if host and port else DEFAULT_ORACLE


def _split_address(address: str) -> tuple[str, str]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise TunerAppError(f"--oracle {address!r}: expected HOST:PORT, e.g. {DEFAULT_ORACLE}")
    return host.strip("[]"), port



def is_loopback(host: str) -> bool:
    """Whether only this machine can reach a server bound to `host`."""
    return host in ("localhost", "::1") or host.startswith("127.")


def exposure_warning() -> str | None:
    """The one-line warning a chief listening beyond this machine deserves; None otherwise."""
    if role() != "chief" or is_loopback(os.environ["KERASTUNER_ORACLE_IP"]):
        return None
    return (f"Warning: the chief listens on {oracle_address()}: every machine that can reach it may ask for trials "
            "(keras-tuner's gRPC has no authentication); use it only on a trusted network")


def quiet_protos():
    """A block in which keras-tuner's Condition.to_proto prints nothing (it prints each condition's value, a
    leftover debug print, on every trial sent between chief and worker)."""
    return contextlib.redirect_stdout(io.StringIO())
