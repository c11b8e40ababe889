"""The `tuner-app` root command group: quiet TensorFlow unless --verbose, and every TunerAppError (or file the
system refused) as one line on stderr with exit code 2, never a traceback. Also what several commands share."""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from pathlib import Path

import click

from tuner_app import __version__
from tuner_app.errors import TunerAppError, os_cause
from tuner_app.model.space.search_space import ACCURACY_METRICS, SIZE_OBJECTIVES
from tuner_app.redaction import redact, redact_logging, redact_tracebacks

DEFAULT_CACHE = Path("~/.cache/tuner-app")

def _quiet_tensorflow() -> None:
    # oneDNN/CUDA/TensorRT banners come from TF's C++ logger before any Python code of ours runs.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # a distributed search's gRPC reports each closed channel
    warnings.filterwarnings("ignore", category=UserWarning, module="keras")
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    # Each retry of a store that went away, and each failed sample of its system metrics: the search says once
    # that tracking is paused.
    for name in ("urllib3.connectionpool", "mlflow.system_metrics"):
        logging.getLogger(name).setLevel(logging.ERROR)


class _Group(click.Group):
    """Turns a TunerAppError into one line on stderr and exit code 2, never a traceback; so too a file the
    system refused (missing, unreadable, unwritable) where no command named it more precisely."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except TunerAppError as err:
            click.echo(f"Error: {redact(str(err))}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except OSError as err:
            if err.filename is None:  # not about a file the user named or can fix: a bug, with its traceback
                raise
            click.echo(f"Error: {redact(str(err.filename))}: {os_cause(err)}", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tuner-app")
@click.option("--verbose", is_flag=True, help="Show TensorFlow's start-up and debug logging.")
def cli(verbose: bool) -> None:
    """Search compact CNNs for 1-second speech-command clips, tracked in MLflow."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    redact_logging()  # MLflow's, SQLAlchemy's and urllib3's lines too: they may quote a store URI
    redact_tracebacks()
    if not verbose:
        _quiet_tensorflow()


def size_axis_option(help_text: str):
    """--x: a size axis (params_total, macs, model_bytes, or the int8 model's flash_bytes, ram_bytes, latency_ms)."""
    return click.option("--x", "x_axis", type=click.Choice(list(SIZE_OBJECTIVES)), default="params_total",
                        show_default=True, help=help_text)


def accuracy_option(help_text: str):
    """--accuracy: whose validation accuracy counts, the trained model's (float) or its int8 conversion's."""
    return click.option("--accuracy", type=click.Choice(list(ACCURACY_METRICS)), default="float",
                        show_default=True, help=help_text)


def echo_json(value) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False))


def comma_list(values: tuple[str, ...]) -> tuple[str, ...] | None:
    """`--classes a,b --classes c` (or `--layers`) -> ("a", "b", "c"); None when the option was not given."""
    names = tuple(name.strip() for value in values for name in value.split(",") if name.strip())
    return names or None


def decoded_corpus(data_dir: Path | None, cache_dir: Path, classes=None, unknown=False, strict=False):
    """(corpus, decoded splits) of --data, or of the built-in corpus made once into the cache."""
    from tuner_app.data import cache, corpus, synth

    if data_dir is None:
        click.echo(f"No --data: using the built-in synthetic corpus (cached under {cache_dir}).", err=True)
        data_dir = synth.default_corpus(cache_dir)
    found = corpus.scan(data_dir, classes, unknown=unknown)
    return found, cache.decode_corpus(found, cache_dir, strict=strict)


