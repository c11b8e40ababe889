"""Serving: export as a SavedModel, TFLite copies, predict and evaluate."""
