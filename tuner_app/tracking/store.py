"""The MLflow store: where it is (embedded SQLite by default), its client, experiments and run queries.

The default store is embedded (SQLite at ./mlruns/mlflow.db, artifacts under ./mlruns/artifacts), so a
search needs no server; a tracking URI (or MLFLOW_TRACKING_URI) points at a server or a database instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import mlflow
import requests
import sqlalchemy
from mlflow.exceptions import MlflowException

from tuner_app.errors import TunerAppError, storage_errors
from tuner_app.redaction import redact, uri_password

STORE_DIR = "mlruns"
PARENT_TAG = "mlflow.parentRunId"  # how MLflow nests runs
# MLflow 3's UI opens an untagged experiment on its GenAI overview (traces, token usage); this tag and value
# are what its JavaScript checks to treat the experiment as model training instead.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_DEVELOPMENT = "custom_model_development"
HEALTH_TIMEOUT = 5.0  # seconds a tracking server has to answer /health before a search starts
# MLflow's client retries a failed HTTP call 7 times with backoff, minutes in all: a search whose server went down
# would stall that long at its next write. Fewer: the search keeps the results and logs them when it answers.
HTTP_RETRIES = "2"


def default_tracking_uri() -> str:
    """The embedded store, ./mlruns/mlflow.db, as an absolute SQLite URI (a UI started elsewhere finds it)."""
    return f"sqlite:///{Path.cwd() / STORE_DIR / 'mlflow.db'}"


def artifact_root(tracking_uri: str | None) -> str | None:
    """Where new experiments keep artifacts: beside a SQLite store; the server's own choice otherwise."""
    path = sqlite_path(tracking_uri or default_tracking_uri())
    return (path.parent / "artifacts").as_uri() if path else None


def sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///").split("?")[0]).resolve()


@functools.lru_cache(maxsize=None)
def client_for(uri: str) -> mlflow.MlflowClient:
    # MLflow and alembic report schema set-up at INFO, which would bury the search's progress.
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", HTTP_RETRIES)
    check_uri(uri)
    make_store_folder(uri)
    try:
        with _schema_set_up_alone(uri):
            return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    except MlflowException as err:  # an unknown scheme, a bare path (MLflow's retired file store), ...
        why = str(err).strip().split(". ")[0]
        raise TunerAppError(f"MLflow store {redact(uri)}: MLflow cannot use it ({redact(why)}); give "
                            "http://HOST:PORT (tuner-app server), sqlite:///PATH or postgresql://USER@HOST/DB") from None


@contextlib.contextmanager
def _schema_set_up_alone(uri: str) -> Iterator[None]:
    """MLflow creates (or migrates) a SQLite store's tables as a client first opens it: two processes doing so at
    once clash ("duplicate column name"). A flock on a file beside the database makes the second one wait."""
    path = sqlite_path(uri)
    lock = _opened_lock(path.with_name(f"{path.name}.lock")) if path else None
    if lock is None:
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released as the file closes
        yield


def _opened_lock(path: Path):
    try:
        return open(path, "a", encoding="utf-8")
    except OSError:  # a folder this process cannot write: it cannot create or migrate a store there either
        return None


def make_store_folder(uri: str, option: str = "--tracking-uri") -> None:
    """Create the folder of a SQLite store (the embedded one included); one line naming it if that is refused."""
    path = sqlite_path(uri)
    if path:
        with storage_errors(path.parent, option):
            path.parent.mkdir(parents=True, exist_ok=True)


def store(tracking_uri: str | None) -> tuple[str, mlflow.MlflowClient]:
    uri = tracking_uri or default_tracking_uri()
    return uri, client_for(uri)


def find_experiment(client, uri: str, name: str, create: bool) -> str:
    try:
        experiment = client.get_experiment_by_name(name)
        if experiment is None and create:
            return client.create_experiment(name, artifact_location=artifact_root(uri),
                                            tags={EXPERIMENT_KIND_TAG: MODEL_DEVELOPMENT})
    except MlflowException as err:
        raise TunerAppError(f"MLflow store {redact(uri)}: {redact(err.message)}") from None
    if experiment is None:
        raise TunerAppError(f"MLflow experiment {name!r} not found in {redact(uri)}")
    if experiment.lifecycle_stage == "deleted":
        raise TunerAppError(f"MLflow experiment {name!r} in {redact(uri)} is deleted; restore it or use another "
                            "--experiment")
    return experiment.experiment_id


def tag_model_development(client, uri: str, experiment_id: str) -> None:
    """Mark an experiment as model development, so MLflow's UI shows it as model training (runs), not GenAI."""
    try:
        client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, MODEL_DEVELOPMENT)
    except MlflowException as err:
        raise TunerAppError(f"MLflow store {redact(uri)}: {redact(err.message)}") from None


def search_runs(client, experiment_id: str, where: str, newest_first: bool = False) -> list:
    """Every run matching `where`, page by page, in start order."""
    order = [f"attributes.start_time {'DESC' if newest_first else 'ASC'}"]
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], where, max_results=1000, order_by=order, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def children_where(parent_run_id: str) -> str:
    if not parent_run_id.isalnum():  # run ids are hex; anything else would break the filter's quoting
        raise TunerAppError(f"{parent_run_id!r} is not an MLflow run id")
    return f"tags.{PARENT_TAG} = '{parent_run_id}'"


def check_uri(uri: str, option: str = "--tracking-uri") -> None:
    """A TunerAppError for a store URI read two ways: SQLAlchemy takes what follows an unescaped "@" in the
    password for the host (and its driver prints it), and a space ends a URI in any message that quotes it."""
    if "://" not in uri or "@" not in uri or sqlite_path(uri):
        return
    if any(character.isspace() for character in uri):  # not shown: the password's tail would be
        raise TunerAppError(f"{option}: the URI holds a space; write each space in it as %20")
    if "@" in (uri_password(uri) or ""):
        raise TunerAppError(f"{option} {redact(uri)}: more than one '@' follows the user name; write each '@' "
                            "in the password (or the query) as %40")


def check_reachable(uri: str) -> None:
    """A TunerAppError unless the store answers now: a tracking server's GET /health, a database's query."""
    check_uri(uri)
    if uri.startswith(("http://", "https://")):
        try:
            response = requests.get(uri.rstrip("/") + "/health", timeout=HEALTH_TIMEOUT)
            problem = None if response.ok else f"/health answered {response.status_code}"
        except requests.RequestException as err:
            problem = type(err).__name__
        if problem:
            raise TunerAppError(f"MLflow tracking server {redact(uri)} does not answer ({problem}); start it with "
                                "`tuner-app server` or correct --tracking-uri (MLFLOW_TRACKING_URI)")
        return
    try:
        _check_database(uri)
    except TunerAppError:
        raise
    except Exception as err:  # noqa: BLE001 -- SQLAlchemy and driver errors alike mean: not reachable
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TunerAppError(f"MLflow store {redact(uri)} does not answer: {redact(first)}") from None


def check_shareable(uri: str, who: str) -> None:
    """A TunerAppError if several processes (`who`: a distributed search) would write one local SQLite file."""
    if sqlite_path(uri) or uri.startswith("file:") or "://" not in uri:
        raise TunerAppError(f"{who}: several processes must not share the SQLite store {redact(uri)}; start "
                            "`tuner-app server` and pass its URL as --tracking-uri (e.g. http://127.0.0.1:5000)")


def _check_database(uri: str) -> None:
    # One connection attempt: MLflow's own store retries a database that refuses for over a minute and a half.
    if sqlite_path(uri) or "://" not in uri:
        client_for(uri).search_experiments(max_results=1)
        return
    timeout = {"connect_timeout": int(HEALTH_TIMEOUT)} if uri.startswith(("postgresql", "mysql")) else {}
    engine = sqlalchemy.create_engine(uri, connect_args=timeout)
    try:
        with engine.connect():
            pass
    finally:
        engine.dispose()
