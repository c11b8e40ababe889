"""Representational similarity analysis: layer RDMs (rdm) compared with rsatoolbox, as a table and a heat map,
and an activations file's RDMs written beside it (rsatoolbox's HDF5 file and their figures)."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tuner_app import outputs
from tuner_app.errors import TunerAppError, storage_errors
from tuner_app.files import atomic_path
from tuner_app.inspection import activations, rdm

COMPARISONS = ("spearman", "rho-a", "corr", "cosine", "kendall", "tau-a")
CSV_HEADER = "layer_a,layer_b,value"  # the comparison table's first line: how a rerun knows it


def saved_rdms(rdms) -> activations.SavedRdms:
    """rsatoolbox `rdms` (rdm.layer_rdms) as activations.save writes them."""
    metric = rdm.metric_of(rdms)
    return activations.SavedRdms(rdm.matrices(rdms), metric, rdm.METRIC_MEANINGS.get(metric),
                                 lambda path: save_rdms(rdms, path))


def save_rdms(rdms, path: str | os.PathLike) -> Path:
    """`rdms` as rsatoolbox's own HDF5 file (rsatoolbox.rdm.load_rdm reads it), written whole or not at all."""
    path = Path(path)
    stored = rdms.copy()
    if "stimulus" in stored.pattern_descriptors:
        stored.pattern_descriptors["stimulus"] = [rdm.ascii_name(name)
                                                  for name in stored.pattern_descriptors["stimulus"]]
    with atomic_path(path) as temporary:
        temporary.unlink()  # rsatoolbox refuses to write over an existing file
        stored.save(str(temporary), file_type="hdf5")
    return path


def similarity(rdms_a, rdms_b, method: str = "spearman") -> np.ndarray:
    """[n_a, n_b]: rsatoolbox.rdm.compare of every RDM of `rdms_a` with every RDM of `rdms_b`."""
    from rsatoolbox.rdm import compare

    rdm.check_choice("--method", method, COMPARISONS)
    if rdms_a.n_cond != rdms_b.n_cond or rdms_a.n_cond < 3:
        raise TunerAppError(f"comparing RDMs needs the same stimuli, 3 or more ({rdms_a.n_cond} and "
                            f"{rdms_b.n_cond} given)")
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant RDM correlates as NaN: shown as such
        return np.asarray(compare(rdms_a, rdms_b, method=method), np.float64)


def write_rdm_figures(rdms, npz_path: str | os.PathLike, method: str = "spearman") -> list[Path]:
    """Beside an activations FILE.npz: FILE.rdms.png (the RDMs) and FILE.rdm_similarity.png (every layer's
    RDM against every other's, by `method`)."""
    from tuner_app.inspection import rsa_figures

    npz_path = Path(npz_path)
    names, stimuli = rdm.layer_names(rdms), list(rdms.pattern_descriptors.get("stimulus", []))
    grid = rsa_figures.rdm_grid(rdm.matrices(rdms), stimuli, rdm.metric_of(rdms), npz_path.with_suffix(".rdms.png"))
    heatmap = rsa_figures.similarity_heatmap(similarity(rdms, rdms, method), names, names,
                                             npz_path.with_suffix(".rdm_similarity.png"),
                                             title=f"{method} between layer RDMs", row_title="layer",
                                             column_title="layer")
    return [grid, heatmap]


def compare(a: str | os.PathLike, b: str | os.PathLike, out_prefix: str | os.PathLike, method: str = "spearman",
            metric: str = "correlation") -> list[tuple[str, str, float]]:
    """Compare the layer RDMs of activations file `a` with those of `b` (another activations file, or a user's
    RDM file: rdm.reference_rdms); write <prefix>.csv (layer_a, layer_b, value) and <prefix>.png. The rows."""
    from tuner_app.inspection import rsa_figures

    rdm.check_choice("--method", method, COMPARISONS)
    a, b, prefix = Path(a).expanduser(), Path(b).expanduser(), Path(out_prefix).expanduser()
    stimuli = activations.load(a).stimuli
    rdms_a, rdms_b = rdm.reference_rdms(a, stimuli, metric), rdm.reference_rdms(b, stimuli, metric)
    values = similarity(rdms_a, rdms_b, method)
    names_a, names_b = rdm.layer_names(rdms_a), rdm.layer_names(rdms_b)
    rows = [(row, column, float(values[i, j])) for i, row in enumerate(names_a) for j, column in enumerate(names_b)]
    table, heatmap = prefix.with_name(prefix.name + ".csv"), prefix.with_name(prefix.name + ".png")
    outputs.check_replaceable_file(table, "--out", outputs.first_line_starts(CSV_HEADER), "a comparison table")
    outputs.check_replaceable_file(heatmap, "--out", outputs.figure_is_ours, "a figure")
    with storage_errors(prefix, "--out"):
        prefix.parent.mkdir(parents=True, exist_ok=True)
        _write_csv(table, rows)
        rsa_figures.similarity_heatmap(values, names_a, names_b, heatmap,
                                       title=f"{method} between RDMs", row_title=a.name, column_title=b.name)
    return rows


def _write_csv(path: Path, rows: Sequence[tuple[str, str, float]]) -> None:
    with atomic_path(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_HEADER.split(","))
        writer.writerows((row, column, f"{value:.6g}") for row, column, value in rows)


def format_table(rows: Sequence[tuple[str, str, float]], method: str = "spearman") -> str:
    """compare's rows as aligned text for a terminal: layer_a, layer_b and the value, one pair a line."""
    width_a = max([len("layer_a"), *(len(row[0]) for row in rows)])
    width_b = max([len("layer_b"), *(len(row[1]) for row in rows)])
    width = max(len(method), len("-0.0000"))
    lines = [f"{'layer_a':{width_a}}  {'layer_b':{width_b}}  {method:>{width}}"]
    lines += [f"{a:{width_a}}  {b:{width_b}}  {value:>{width}.4f}" for a, b, value in rows]
    return "\n".join(lines)
