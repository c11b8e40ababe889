"""CPU, memory, disk and network use of a trial, as MLflow's own system metrics (the UI's System metrics tab)."""

from __future__ import annotations

from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

SAMPLING_SECONDS = 2.0  # MLflow's default is 10 s: longer than a smoke trial


class TrialMonitor(SystemMetricsMonitor):
    """MLflow's monitor, which also logs a last sample when the trial ends: on its own it logs only samples
    whose whole interval passed before the stop, so a trial shorter than one interval would get none."""

    def __init__(self, run_id: str, tracking_uri: str):
        super().__init__(run_id, sampling_interval=SAMPLING_SECONDS, tracking_uri=tracking_uri)

    def finish(self) -> None:
        if self._process is None:
            return
        super().finish()
        self.collect_metrics()
        self.publish_metrics(self.aggregate_metrics())
        self.mlflow_logger.flush()
