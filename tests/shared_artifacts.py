"""Session-wide artifacts that are slow to make and that tests only copy or read (conftest imports the fixtures)."""

import contextlib
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def _empty_store(tmp_path_factory) -> Path:
    """A new MLflow SQLite store, its tables made (MLflow's migrations: seconds) and nothing logged to it."""
    import mlflow

    path = tmp_path_factory.mktemp("empty_store") / "mlflow.db"
    with contextlib.chdir(path.parent):  # where MLflow puts its Default experiment: beside it, not in ./mlruns
        mlflow.MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture(scope="session")
def new_store(_empty_store):
    """new_store(path): a copy of the empty store at `path`, for a test whose point is what is logged, not how
    MLflow makes a store (tests/test_store_creation.py); its SQLite URI."""
    def copy(path: Path) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_empty_store, path)
        return f"sqlite:///{path}"

    return copy


@pytest.fixture(scope="session")
def tiny_export(tiny_trial_dir, tmp_path_factory) -> Path:
    """conftest's tiny trial exported with the default options, once per test run for the modules that read an
    export: they never write into it (they copy it to change it)."""
    from tuner_app.serving import export

    return export.export_trial(tiny_trial_dir, tmp_path_factory.mktemp("tiny_export") / "model").path
