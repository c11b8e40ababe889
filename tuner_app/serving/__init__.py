"""Serving: export as a SavedModel (with its TFLite copies, device/), predict and evaluate."""
