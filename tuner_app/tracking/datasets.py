"""The corpus a search trained on, as MLflow datasets: one per split, the inputs of every trial run, so the UI's
Dataset column and filter show which data (and which version of it) each trial saw."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

from mlflow.entities import Dataset, DatasetInput, InputTag

CONTEXT_TAG = "mlflow.data.context"  # what mlflow.log_input(..., context=) writes; the UI shows it per input
CONTEXTS = {"train": "training", "validation": "validation", "test": "testing"}
DIGEST_CHARS = 32  # MLflow stores a dataset digest in 36 characters


def corpus_inputs(data: Mapping[str, Any]) -> list[DatasetInput]:
    """The search record's `data` (path, fingerprint, counts per class and split, speakers) as one MLflow dataset
    input per split, in training, validation, test order; none without a fingerprint (nothing to identify it by)."""
    fingerprint, counts = data.get("fingerprint"), data.get("counts") or {}
    if not fingerprint or not data.get("path"):
        return []
    root = Path(data["path"]).resolve()
    inputs = []
    for split, context in CONTEXTS.items():
        per_class = {name: int(splits.get(split, 0)) for name, splits in counts.items()}
        dataset = Dataset(name=f"{root.name}/{split}", digest=_digest(fingerprint, split), source_type="local",
                          source=json.dumps({"uri": root.as_uri()}), profile=json.dumps(
                              {"clips": sum(per_class.values()), "classes": len(per_class),
                               "fingerprint": fingerprint, "per_class": per_class, **_speakers(data, split)}))
        inputs.append(DatasetInput(dataset, [InputTag(CONTEXT_TAG, context)]))
    return inputs


def _speakers(data: Mapping[str, Any], split: str) -> dict[str, Any]:
    """Whether the corpus's splits share no speaker, and this split's speaker count; nothing for records from
    before speakers were data."""
    if "speaker_disjoint" not in data:
        return {}
    return {"speaker_disjoint": data["speaker_disjoint"], "speakers": (data.get("speakers") or {}).get(split)}


def _digest(fingerprint: str, split: str) -> str:
    """The corpus fingerprint made split-specific: MLflow links a dataset to a run once, so each split of the
    one corpus is a dataset of its own, and its digest changes whenever the corpus's file list does."""
    return hashlib.sha256(f"{fingerprint}:{split}".encode()).hexdigest()[:DIGEST_CHARS]
