"""Tracking: MLflow (the only mlflow importer), values as params, the UI server."""
