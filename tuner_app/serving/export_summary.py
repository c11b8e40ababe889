"""What `tuner-app export` prints about the directory it wrote."""

from __future__ import annotations

from tuner_app.serving.export import ExportResult


def format_result(result: ExportResult) -> str:
    """What an export wrote: the SavedModel, any .tflite with its size and ops, and the accuracy check."""
    saved_model = sum(f.stat().st_size for f in [result.path / "saved_model.pb", *(result.path / "variables").iterdir()])
    lines = [f"Wrote {result.path}: {result.metadata['model']}, {result.metadata['params']:,} params, "
             f"SavedModel {saved_model:,} bytes"]
    for entry in result.tflite.values():
        flex = ", ".join(entry["ops"].get("flex", []))
        arena = entry.get("description", {}).get("tflm_arena_bytes")
        lines.append(f"  {entry['path'].name}: {entry['bytes']:,} bytes" + (f" (TF Select ops: {flex})" if flex else "")
                     + (f", TFLite Micro arena {arena:,} bytes" if arena else ""))
    if result.quantization:
        lines.append(f"  quantization: {result.quantization}")
    if result.accuracy and result.accuracy.get("clips"):
        scores = ", ".join(f"{name} {value:.4f}" for name, value in result.accuracy.items() if name != "clips")
        lines.append(f"  accuracy on {result.accuracy['clips']} check clips: {scores}")
    return "\n".join(lines)
