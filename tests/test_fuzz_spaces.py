"""The space loader fuzzed: arbitrary YAML, the shipped spaces with extreme numbers, and hand-written hostile
files (an alias bomb, a deep nest, 10 MB) are each accepted or refused in one line naming the file, and so is
what `search --dry-run --trials 3` then does with them (dry_run, check_budget), with this process's memory
capped, so a range listed or a structure walked whole fails here."""

import contextlib
import copy
import functools
import re
import resource
import signal
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tuner_app.errors import TunerAppError
from tuner_app.model.architecture import space_sizes
from tuner_app.model.space import search_space

ROOT = Path(__file__).resolve().parent.parent
SPACE_FILES = sorted((ROOT / "search_spaces").glob("*.yaml")) + sorted((ROOT / "benchmarks" / "spaces").glob("*.yaml"))
SMOKE = (ROOT / "search_spaces" / "smoke.yaml").read_text()
ISSUE_23_CASE_2 = SMOKE.replace("max_value: 2}", "max_value: 1000000000}", 1)  # 10**9 ints listed: 22.5 GB
HEADROOM = 2**30  # what checking one space file may add to the process's data segment
RUNAWAY_S = 60  # per file: a walk that never ends, not a measure of speed (each takes well under a second)
KEYS = ("model", "frontend", "frontends", "augment", "hyperparameters", "tuner", "training", "objective", "type",
        "min_value", "max_value", "step", "sampling", "values", "value", "default", "conditional_scope", "name",
        "max_trials", "epochs", "batch_size", "seed", "kind", "conv_layers", "fc_layers", "fc_units_1", "filters")
HYPERPARAMETERS = ("conv_layers", "fc_layers", "filters", "filter_growth", "kernel_size", "pool_size", "fc_units_1",
                   "fc_units_16", "fc_units_1000000", "dropout", "learning_rate", "epochs", "warmup_epochs",
                   "frame_length", "fft_length", "num_mel_bins", "lower_edge_hertz", "dscnn_blocks",
                   "tcresnet_width", "bcresnet_sub_bands")
NUMBERS = (0, -1, 1, 2, 3, 10**9, 2**31, 2**32, 2**63, 2**64, 10**30, -(2**63), 0.5, 1e-320, 1e9, 1e308,
           float("nan"), float("inf"), float("-inf"))
EXTREMES = st.one_of(st.sampled_from(NUMBERS), st.sampled_from((True, None, "", "x" * 1000, [], {})),
                     st.integers(1, 3).map(lambda exponent: list(range(10**exponent))))


@functools.cache
def _hostile_files() -> dict[str, str]:
    """name -> text of a file written to take a loader down."""
    return {
        "alias_bomb.yaml": f"model: {_laughs(8)}\n",  # 10**9 ones from 100 values: any message's repr of it
        "alias_bomb_in_a_choice.yaml": SMOKE.replace("conv_layers: {type: int, min_value: 1, max_value: 2}",
                                                     f"conv_layers: {{type: choice, values: {_laughs(8)}}}"),
        "deep_lists.yaml": "hyperparameters: " + "[" * 10_000 + "]" * 10_000 + "\n",
        "deep_mappings.yaml": "model: " + "{a: " * 10_000 + "1" + "}" * 10_000 + "\n",
        "long_list.yaml": SMOKE.replace("max_trials: 2", "max_trials: [" + "1, " * 150_000 + "1]"),
        "ten_megabytes.yaml": "hyperparameters:\n  conv_layers: {type: choice, values: [" + "1, " * 3_500_000 + "1]}\n",
        "long_integer.yaml": "tuner: {name: random, max_trials: " + "9" * 5_000 + "}\n",
        "recursive.yaml": "model: &loop [*loop]\n",
        "control_character.yaml": "model: cnn2d\x00\n",
        "comments.yaml": SMOKE + "# padding\n" * 100_000,  # valid, and under the size limit
    }


def _laughs(level: int) -> str:
    """A flow list of 10 ** (level + 1) ones once expanded: each level an anchor and nine aliases of it."""
    if level == 0:
        return "[" + ", ".join(["1"] * 10) + "]"
    return f"[&l{level} {_laughs(level - 1)}, " + ", ".join([f"*l{level}"] * 9) + "]"


def _vm_data() -> int:
    with open("/proc/self/status") as status:
        return int(re.search(r"VmData:\s+(\d+) kB", status.read())[1]) * 1024


class Runaway(Exception):
    """A space file still being checked after RUNAWAY_S seconds."""


@contextlib.contextmanager
def bounded(headroom: int = HEADROOM, seconds: int = RUNAWAY_S):
    """This process's data segment capped at its size now plus `headroom` (RLIMIT_DATA's soft limit), and
    Runaway raised after `seconds`; both put back after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    cap = _vm_data() + headroom
    resource.setrlimit(resource.RLIMIT_DATA, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    previous = signal.signal(signal.SIGALRM, _raise_runaway)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def _raise_runaway(signum, frame):
    raise Runaway(f"still checking the space after {RUNAWAY_S} s")


def accepted_or_refused(path: Path) -> str | None:
    """Load the space and do what `search --dry-run --trials 3` does with it, bounded: None, or the one line
    naming the file that refused it."""
    with bounded():
        try:
            space = search_space.load(path)
            space_sizes.dry_run(space, trials=3)
            space_sizes.check_budget(space, None)
        except TunerAppError as err:
            message = str(err)
            assert "\n" not in message and path.name in message, message[:2000]
            return message
    return None


@pytest.fixture(scope="module", autouse=True)
def small_budget_check():
    """Import keras-tuner (what a dry run samples with) before memory is capped, and size at most 500
    configurations per space: these constants bound the budget check's walks, and this test bounds the rest."""
    import keras_tuner  # noqa: F401

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(space_sizes, "MAX_ENUMERATED", 500)
        patch.setattr(space_sizes, "SAMPLED", 100)
        yield


def _write(folder: Path, text: str, name: str = "fuzzed.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# (a) arbitrary YAML-ish documents: nested mappings, lists and scalars, keys often real ones.
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12),
                    st.sampled_from(NUMBERS))
DOCUMENTS = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=5), max_leaves=25)
YAML_TEXT = st.text(alphabet="{}[]:,&*!|>'\"-#%@` \n\t\x00\x1babtype019.e+", max_size=200)

_FUZZ = settings(max_examples=40, derandomize=True, database=None, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                        HealthCheck.data_too_large])


@_FUZZ
@given(document=st.one_of(DOCUMENTS, st.dictionaries(st.sampled_from(KEYS[:8]), DOCUMENTS, max_size=8)),
       raw=st.none() | YAML_TEXT)
@example(document=None, raw="model: " + "[" * 3_000 + "]" * 3_000)  # composed by recursion
def test_any_yaml_document_is_accepted_or_refused_in_one_line(tmp_path, document, raw):
    accepted_or_refused(_write(tmp_path, raw if raw is not None else yaml.safe_dump(document)))


# (b) the shipped spaces, with extreme numbers (or lists) put anywhere, and hyperparameters declared with them.
def _mutate(draw, document) -> None:
    node = document
    while isinstance(node, (dict, list)) and node:
        key = draw(st.sampled_from(list(node) if isinstance(node, dict) else range(len(node))))
        if isinstance(node[key], (dict, list)) and node[key] and draw(st.booleans()):
            node = node[key]
            continue
        node[key] = draw(EXTREMES)
        return


@st.composite
def mutated_spaces(draw) -> str:
    document = copy.deepcopy(yaml.safe_load(draw(st.sampled_from(SPACE_FILES)).read_text()))
    for _ in range(draw(st.integers(0, 3))):
        _mutate(draw, document)
    if isinstance(document.get("hyperparameters"), dict):
        for name in draw(st.lists(st.sampled_from(HYPERPARAMETERS), max_size=3)):
            kind = draw(st.sampled_from(("int", "float", "choice", "fixed")))
            bounds = {"min_value": draw(st.sampled_from((0, 1, 2)) | EXTREMES),
                      "max_value": draw(st.sampled_from(NUMBERS))}
            document["hyperparameters"][name] = {"type": kind, **(
                {"values": draw(EXTREMES)} if kind == "choice" else {"value": draw(EXTREMES)} if kind == "fixed"
                else {**bounds, **draw(st.sampled_from(({}, {"step": 2}, {"sampling": "log"})))})}
    return yaml.safe_dump(document, sort_keys=False)


@_FUZZ
@given(text=mutated_spaces())
@example(text=ISSUE_23_CASE_2)
@example(text=SMOKE.replace("min_value: 0, max_value: 1}", "min_value: 0, max_value: 100000000}"))  # fc_units_1..N
def test_shipped_spaces_with_extreme_numbers_are_accepted_or_refused_in_one_line(tmp_path, text):
    accepted_or_refused(_write(tmp_path, text))


# (c) hand-written hostile files: each refused, but for the padded one.
@pytest.mark.parametrize("name", sorted(_hostile_files()))
def test_hostile_space_files_are_refused_in_one_line(tmp_path, name):
    refusal = accepted_or_refused(_write(tmp_path, _hostile_files()[name], name))
    assert (refusal is None) == (name == "comments.yaml"), refusal


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs an endless file")
def test_an_endless_file_is_refused_for_its_size():
    with bounded(), pytest.raises(TunerAppError, match=r"^zero: larger than 1,024 KiB"):
        search_space.load("/dev/zero")
