"""`tuner-app visualize`, `activations` and `compare-rdms`: look inside a model, and compare its layers'
representations with another model's or with brain responses to the same stimuli."""

from __future__ import annotations

from pathlib import Path

import click

from tuner_app.cli.root import comma_list, cli
from tuner_app.errors import TunerAppError

SALIENCY_METHODS = ("gradient_x_input", "integrated_gradients")  # inspection.saliency.METHODS, without importing TF
RDM_METRICS = ("correlation", "euclidean", "poisson")  # inspection.rdm.METRICS
COMPARISONS = ("spearman", "rho-a", "corr", "cosine", "kendall", "tau-a")  # inspection.rsa.COMPARISONS


def _model_source(model: Path | None, run_id: str | None, tracking_uri: str | None):
    """The Inspected model of MODEL (an export or trial directory) or of --run-id's trial."""
    from tuner_app.inspection import source

    if (model is None) == (run_id is None):
        raise TunerAppError("give exactly one of MODEL (an export or trial directory) and --run-id")
    if run_id is not None:
        from tuner_app.tracking import runs

        model = Path(runs.completed(runs.run_info(tracking_uri, run_id))["trial_dir"])
    return source.load(model)


def _model_options(command):
    command = click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI",
                           help="MLflow store --run-id reads (default: SQLite in ./mlruns).")(command)
    command = click.option("--run-id", help="Instead of MODEL: the MLflow run of a completed trial.")(command)
    return click.argument("model", required=False, type=click.Path(path_type=Path))(command)


@cli.command()
@_model_options
@click.option("--input", "clip", required=True, type=click.Path(path_type=Path),
              help="The audio clip to show (WAV/FLAC/OGG/MP3, any rate; cut or padded to 1 s at 16 kHz).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Directory for the figures.")
@click.option("--class", "classes", multiple=True,
              help="Also show saliency for this class (name or index); repeat for more.")
@click.option("--saliency", "method", type=click.Choice(SALIENCY_METHODS), default=SALIENCY_METHODS[0],
              show_default=True, help="Saliency: gradients x input, or integrated gradients from silence.")
@click.option("--format", "output_format", type=click.Choice(["png", "html"]), default="png", show_default=True,
              help="html: also one self-contained report.html with every figure.")
def visualize(model: Path | None, run_id: str | None, tracking_uri: str | None, clip: Path, out: Path,
              classes: tuple[str, ...], method: str, output_format: str) -> None:
    """Figures of MODEL on one clip: first-layer filters, every conv block's feature maps, class saliency, and
    where the parameters and MACs sit."""
    from tuner_app.inspection import report, stimuli

    waveform = stimuli.read_clip(clip)  # first: a bad clip is refused before the model loads
    inspected = _model_source(model, run_id, tracking_uri)
    paths = report.visualize(inspected, waveform, out, classes=classes, method=method,
                             html=output_format == "html", clip_name=clip.name)
    for path in paths:
        click.echo(str(path))
    click.echo(f"{len(paths)} files in {out} ({inspected.name}, {inspected.walk.params_total:,} params)", err=True)


@cli.command()
@_model_options
@click.option("--stimuli", required=True, type=click.Path(path_type=Path),
              help="A folder of audio files (sorted by path) or a text file listing them, one per line, in order.")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="FILE.npz to write; FILE.mat (MATLAB) is written beside it.")
@click.option("--layers", multiple=True, help="Comma-separated layers (default: frontend and every block).")
@click.option("--pool", type=click.Choice(["time", "none"]), default="time", show_default=True,
              help="time: average each layer over time; none: keep the whole map.")
@click.option("--rdm", is_flag=True, help="Also write each layer's RDM (rsatoolbox) and their figures.")
@click.option("--metric", type=click.Choice(RDM_METRICS), default="correlation", show_default=True,
              help="RDM dissimilarity: correlation is 1 - Pearson r.")
@click.option("--force", is_flag=True, help="Replace existing output files.")
def activations(model: Path | None, run_id: str | None, tracking_uri: str | None, stimuli: Path, out: Path,
                layers: tuple[str, ...], pool: str, rdm: bool, metric: str, force: bool) -> None:
    """Each layer's response to every stimulus, for GLM, encoding and RSA analyses against brain data."""
    from tuner_app.inspection import activations as layer_activations
    from tuner_app.inspection import stimuli as stimulus_files

    out = _npz_path(out, force)
    inspected = _model_source(model, run_id, tracking_uri)
    listed = stimulus_files.list_stimuli(stimuli)
    arrays = layer_activations.collect(inspected, stimulus_files.read_stimuli(listed), comma_list(layers), pool)
    stimulus_names = [item.name for item in listed]
    if rdm:
        written = _save_with_rdms(out, arrays, stimulus_names, inspected, pool, metric)
    else:
        written = layer_activations.save(out, arrays, stimulus_names, inspected, pool)
    for name, array in arrays.items():
        click.echo(f"{name:32s} {'x'.join(str(size) for size in array.shape)}")
    for path in written:
        click.echo(f"Wrote {path}", err=True)


def _npz_path(out: Path, force: bool) -> Path:
    from tuner_app.inspection import activations as layer_activations

    out = out.expanduser()
    if out.suffix != ".npz":
        raise TunerAppError(f"--out {out}: expected a .npz file name")
    if out.exists() and not force:
        raise TunerAppError(f"{out}: already exists; use --force to replace it")
    layer_activations.check_replaceable(out)  # --force or not: only an earlier activations set is replaced
    return out


def _save_with_rdms(out: Path, arrays, stimulus_names, inspected, pool: str, metric: str) -> list[Path]:
    """The activations with one RDM per layer, and the RDM figures; a layer where the metric is undefined (the
    pooled waveform: one number per stimulus) is left out with a warning rather than losing the others."""
    from tuner_app.inspection import activations as layer_activations
    from tuner_app.inspection import rdm, rsa

    rdms = rdm.layer_rdms(arrays, stimulus_names, metric, skip_undefined=True)
    written = layer_activations.save(out, arrays, stimulus_names, inspected, pool, rsa.saved_rdms(rdms))
    return written + rsa.write_rdm_figures(rdms, out)


@cli.command("compare-rdms")
@click.argument("first", type=click.Path(path_type=Path))
@click.argument("second", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=Path("rdm_comparison"), show_default=True,
              help="Prefix of the table (.csv) and heat map (.png) to write.")
@click.option("--method", type=click.Choice(COMPARISONS), default="spearman", show_default=True,
              help="How two RDMs compare (rsatoolbox.rdm.compare).")
@click.option("--metric", type=click.Choice(RDM_METRICS), default="correlation", show_default=True,
              help="RDM dissimilarity for an activations file saved without --rdm.")
def compare_rdms(first: Path, second: Path, out: Path, method: str, metric: str) -> None:
    """Compare the RDMs of FIRST (an activations .npz) with those of SECOND: another model's activations, or an
    RDM you supply (.npy, .csv, .npz, MATLAB .mat, rsatoolbox .hdf5), e.g. from fMRI responses to the stimuli."""
    from tuner_app.inspection import rsa

    rows = rsa.compare(first, second, out.expanduser(), method, metric)
    click.echo(rsa.format_table(rows, method))
    click.echo(f"Wrote {out}.csv and {out}.png", err=True)
