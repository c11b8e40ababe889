"""What the benchmarks share: the machine and versions line, Markdown tables, the two corpora (FSDD imported
in place from ../shared/data; the built-in synthetic corpus) and a seeded subsample of them, one trained
space's scores, the seed's published table, and a plot of accuracy against size; a generated tone corpus, the
built-in corpus's cache state, a CSV writer, stacked bars, and a ledger of seconds per category."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime
import functools
import os
import platform
import sys
import tempfile
import time
from collections import defaultdict
from importlib import metadata
from pathlib import Path

from tuner_app.data import cache, corpus, synth
from tuner_app.data.fsdd import import_fsdd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FSDD = ROOT.parent / "shared" / "data" / "free-spoken-digit-dataset"
DEFAULT_CACHE = Path(os.environ.get("TUNER_APP_CACHE", Path.home() / ".cache" / "tuner-app"))


def machine() -> str:
    """CPU model, cores and vector flags: timings are only comparable on the same line."""
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8") if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    vector = ", ".join(flag for flag in ("avx2", "avx512f") if flag in flags) or "neither AVX2 nor AVX-512"
    return f"{model}, {os.cpu_count()} cores, {vector}"


def versions() -> str:
    packages = ("tensorflow", "keras", "keras-tuner", "tensorflow-io", "tuner-app")
    return ", ".join([f"Python {platform.python_version()}"] + [f"{name} {metadata.version(name)}"
                                                                 for name in packages])


def columns(rows: list[dict[str, object]]) -> list[str]:
    """Every key of the rows, in first-seen order: later rows may carry columns the first lacks."""
    return list(dict.fromkeys(key for row in rows for key in row))


def dominates(row: dict, reference: dict, compared: tuple[tuple[str, int], ...]) -> bool:
    """Whether `row` is no worse than `reference` in every (key, +1 higher is better / -1 lower is) of `compared`,
    and better in one."""
    differences = [sign * (row[key] - reference[key]) for key, sign in compared]
    return min(differences) >= 0 and max(differences) > 0


def markdown_table(rows: list[dict[str, object]]) -> str:
    header = columns(rows)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(row.get(key, "")) for key in header) + " |" for row in rows]
    return "\n".join(lines)


@contextlib.contextmanager
def run_dir(workdir: str | None, prefix: str, resume: str | None = None):
    """Where a benchmark's corpora and trials go: with --workdir, a new folder in it that is kept (an interrupted
    run's finished trials survive it, and the benchmark says where); with --resume, that kept folder again;
    otherwise a temporary folder."""
    if resume is not None:
        if not Path(resume).is_dir():
            raise SystemExit(f"--resume: no run folder {resume}")
        yield Path(resume)
        return
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix=prefix) as name:
            yield Path(name)
        return
    Path(workdir).mkdir(parents=True, exist_ok=True)
    kept = Path(tempfile.mkdtemp(prefix=prefix, dir=workdir))
    print(f"trials and corpora go to {kept} (kept)", flush=True)
    yield kept


def add_run_dir_options(parser, what: str) -> None:
    """run_dir's options: --workdir (`what` go to a new folder in it, kept) and --resume (that folder again)."""
    parser.add_argument("--workdir", help=f"where {what} go (a new folder in it, kept; default: temporary)")
    parser.add_argument("--resume", help="a run folder an interrupted run left (its finished trials are kept)")


def provenance(script: str, seconds: float) -> str:
    """A results file's provenance line: machine, date, the command as it ran (benchmarks/<script>), its
    minutes, versions."""
    command = " ".join([".venv/bin/python", f"benchmarks/{script}", *sys.argv[1:]])
    return (f"Machine: {machine()}. Date: {datetime.date.today()}. Command: `{command}` "
            f"({seconds / 60:.1f} min in all). Versions: {versions()}.")


def timed(fn) -> tuple[object, float]:
    """(fn(), its wall-clock seconds)."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def scan_fsdd(workdir: Path) -> corpus.Corpus:
    """FSDD imported into `workdir`, not decoded yet (for benchmarks that time the decoding)."""
    import_fsdd(FSDD, workdir / "fsdd")
    return corpus.scan(workdir / "fsdd")


def scan_default_corpus() -> corpus.Corpus:
    """The main job's corpus (synthesized once into the cache), not decoded yet."""
    return corpus.scan(synth.default_corpus(DEFAULT_CACHE))


def load_fsdd(workdir: Path) -> tuple[dict, list[str]]:
    """FSDD's own split (speakers' takes 0-4 test, 5-9 validation), decoded to 16 kHz: (splits, class names); a
    resumed run reads the corpus it imported."""
    corpus_dir = workdir / "fsdd"
    if not corpus_dir.is_dir():
        import_fsdd(FSDD, corpus_dir)
    found = corpus.scan(corpus_dir)
    return cache.decode_corpus(found, workdir / "cache"), list(found.classes)


def load_default_corpus() -> tuple[dict, list[str], object]:
    """The main job's corpus (synthesized once into the cache): (splits, class names, noise bank)."""
    found = corpus.scan(synth.default_corpus(DEFAULT_CACHE))
    return cache.decode_corpus(found, DEFAULT_CACHE), list(found.classes), cache.noise_bank(found.background_noise)


def completed_trials(tuner) -> list[dict[str, object]]:
    """Each completed trial of a search: its values and its scores (sizes, val and test accuracy, seconds)."""
    rows = []
    for trial in tuner.oracle.trials.values():
        if trial.status != "COMPLETED":
            continue
        scores = {name: trial.metrics.get_last_value(name) for name in trial.metrics.metrics}
        rows.append({"trial_id": trial.trial_id, "values": dict(trial.hyperparameters.values), **scores})
    return rows


def seed_reference() -> list[dict[str, str]]:
    """The seed's published table (tuner_app/analysis/seed_reference.csv), one dict of strings per row."""
    lines = (ROOT / "tuner_app" / "analysis" / "seed_reference.csv").read_text(encoding="utf-8").splitlines()
    return list(csv.DictReader(line for line in lines if not line.startswith("#")))


def subsample(splits: dict, counts: dict[str, int], seed: int = 0) -> dict:
    """`counts[name]` clips of each named split, drawn at a fixed seed (so each class keeps its share on
    average), in corpus order, held in memory; splits not named stay whole."""
    import numpy as np

    rng, picked = np.random.default_rng(seed), {}
    for name, clips in splits.items():
        keep = np.sort(rng.permutation(len(clips))[:counts.get(name, len(clips))])
        picked[name] = dataclasses.replace(clips, waveforms=np.asarray(clips.waveforms[keep]),
                                           labels=np.asarray(clips.labels[keep]),
                                           paths=tuple(clips.paths[index] for index in keep))
    return picked


def scatter_plot(rows: list[dict], path: Path, title: str) -> None:
    """Test accuracy against params (log), one colour per set: squares for grids, dots for searches (and the
    main job's trials), stars for single models."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 5.5))
    for label in dict.fromkeys(row["set"] for row in rows):
        points = [row for row in rows if row["set"] == label]
        marker = "s" if "grid" in label else "o" if "search" in label or "main job" in label else "*"
        axes.scatter([row["params"] for row in points], [row["test"] for row in points], label=label,
                     marker=marker, s=160 if marker == "*" else 36, alpha=0.8)
    axes.set(xscale="log", xlabel="parameters (total)", ylabel="test accuracy", title=title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def write_csv(rows: list[dict[str, object]], path: Path, fields: list[str]) -> None:
    """Rows as CSV with these columns; a row without one leaves its cell empty."""
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)


class Ledger:
    """Seconds per category, each call's own: time spent in a timed call inside it counts for that call only."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._inner: list[float] = []  # per open timed call: seconds of the timed calls inside it

    def wrap(self, category: str, function):
        @functools.wraps(function)
        def timed_call(*args, **kwargs):
            self._inner.append(0.0)
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                self.seconds[category] += elapsed - self._inner.pop()
                self.calls[category] += 1
                if self._inner:
                    self._inner[-1] += elapsed
        return timed_call


def tone_splits(train_per_class: int) -> tuple[dict, list[str]]:
    """A generated corpus in memory: 16 classes, one tone each plus noise (tests/conftest.py's), train /
    validation / test (validation and test: 2 clips a class); and the 16 class names."""
    import numpy as np

    def clips(seed: int, per_class: int) -> cache.DecodedClips:
        rng = np.random.default_rng(seed)
        labels = np.repeat(np.arange(16), per_class).astype(np.int64)
        tones = 0.3 * np.sin(2 * np.pi * (200 + 150 * labels[:, None]) * np.arange(16000) / 16000)
        waveforms = (tones + 0.05 * rng.standard_normal(tones.shape)).astype(np.float32)
        return cache.DecodedClips(waveforms, labels, tuple(f"tone{seed}_{i}.wav" for i in range(len(labels))))

    splits = {"train": clips(1, train_per_class), "validation": clips(2, 2), "test": clips(3, 2)}
    return splits, [f"tone_{index}" for index in range(16)]


def default_cache_files() -> tuple[bool, set[str]]:
    """Whether the built-in corpus is synthesized in DEFAULT_CACHE, and the decoded cache's files there."""
    synthesized = any(all((folder / name).is_file() for name in corpus.LIST_FILES.values())
                      for folder in DEFAULT_CACHE.glob("synth-v*"))
    return synthesized, {path.name for path in (DEFAULT_CACHE / "decoded").glob("*.npy")}


def stacked_bars(bars: dict[str, dict[str, float]], path: Path, ylabel: str, title: str) -> None:
    """One bar per key, its parts stacked in order (the first solid, the rest hatched)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    names, bottoms = list(bars), [0.0] * len(bars)
    for index, part in enumerate(next(iter(bars.values()))):
        heights = [bars[name][part] for name in names]
        axes.bar(names, heights, bottom=bottoms, label=part, color=plt.cm.tab20(index % 20),
                 hatch="//" if index else "")
        bottoms = [bottom + height for bottom, height in zip(bottoms, heights)]
    axes.set(ylabel=ylabel, title=title, ylim=(0, 1.4 * max(bottoms)))  # room for the legend above the bars
    axes.legend(fontsize=8, ncol=4, loc="upper center")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
