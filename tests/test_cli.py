import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from conftest import tone, write_wav

from tuner_app import __version__
from tuner_app.cli import cli

SPACES = Path(__file__).resolve().parents[1] / "search_spaces"
# A line of TensorFlow's C++ log: "2026-01-02 03:04:05.678901: I tensorflow/core/....cc:153] ..."
TF_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] \S+\.cc:\d+\] ", re.MULTILINE)


def _corpus(root):
    for word in ("yes", "zero", "one"):
        for i in range(2):
            write_wav(root / word / f"spk{i}_nohash_0.wav", tone(freq=300 + 50 * i))
    (root / "one" / "spk9_nohash_0.wav").write_bytes(b"RIFF broken")
    return root


def test_version_and_help():
    runner = CliRunner()
    assert runner.invoke(cli, ["--version"]).output.strip() == f"tuner-app, version {__version__}"
    assert "data" in runner.invoke(cli, ["--help"]).output


def test_prepare_decodes_caches_and_names_skipped_files(tmp_path):
    data = _corpus(tmp_path / "data")
    args = ["data", "prepare", "--data", str(data), "--cache-dir", str(tmp_path / "cache")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    decoded = sorted((tmp_path / "cache" / "decoded").glob("*.npz"))
    assert len(decoded) == 3
    total = sum(len(np.load(p)["labels"]) for p in decoded)
    assert total == 4  # 'yes' is not a seed word; the broken 'one' clip is skipped
    strict = CliRunner().invoke(cli, args[:-2] + ["--cache-dir", str(tmp_path / "c2"), "--strict"])
    assert strict.exit_code == 2 and "spk9_nohash_0.wav" in strict.output


def test_missing_path_is_one_line_not_a_traceback(tmp_path):
    result = CliRunner().invoke(cli, ["data", "prepare", "--data", str(tmp_path / "typo")])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "typo" in result.output


def test_tensorflow_start_up_noise_is_hidden_unless_verbose(tmp_path):
    data = _corpus(tmp_path / "data")
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "ABSL_MIN_LOG_LEVEL")}

    def stderr_of(*flags):
        command = [sys.executable, "-m", "tuner_app.cli", *flags, "data", "prepare", "--data", str(data),
                   "--cache-dir", str(tmp_path / "cache")]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300).stderr

    quiet = stderr_of()
    assert not TF_LOG_LINE.search(quiet) and "cuda" not in quiet.lower() and "TensorRT" not in quiet
    assert "1 unreadable" in quiet  # our own warning still reaches the user
    # Which lines TensorFlow logs depends on the CPU (oneDNN, AVX banners) and GPU; that it logs does not.
    assert TF_LOG_LINE.search(stderr_of("--verbose"))


def test_search_dry_run_lists_the_seed_grid_with_exact_counts():
    result = CliRunner().invoke(cli, ["search", "--space", str(SPACES / "seed_2d.yaml"), "--dry-run", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)  # stderr says how many classes
    no_bn = [row["params"] for row in rows if not row["hyperparameters"]["batch_norm"]]
    assert no_bn[-2:] == [None, None]  # the seed's "X" rows: five 5x5 convs do not fit
    assert [row["infeasible"] for row in rows][-1] == ("b08_conv: conv 5x5 with stride 1x1 and 'valid' padding does not "
                                                       "fit the 13x3 feature map")
    assert no_bn[:-2] == [49_956_064, 50_472_672, 22_368_624, 22_885_232, 8_586_128, 9_102_736, 2_640_848, 3_157_456]


def test_search_trains_the_smoke_space_and_resumes(tmp_path):
    data = _corpus(tmp_path / "data")
    for word in ("zero", "one"):
        for i in range(2, 8):
            write_wav(data / word / f"spk{i}_nohash_0.wav", tone(freq=200 + 40 * i))
    (data / "validation_list.txt").write_text("zero/spk2_nohash_0.wav\none/spk3_nohash_0.wav\n")
    (data / "testing_list.txt").write_text("zero/spk4_nohash_0.wav\none/spk5_nohash_0.wav\n")
    args = ["search", "--space", str(SPACES / "smoke.yaml"), "--data", str(data), "--cache-dir",
            str(tmp_path / "cache"), "--runs-dir", str(tmp_path / "runs"), "--format", "json"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    rows = json.loads(first.stdout)
    assert [row["status"] for row in rows] == ["COMPLETED", "COMPLETED"]
    weights = {path: path.stat().st_mtime_ns for path in (tmp_path / "runs").glob("*/trial_*/checkpoint.weights.h5")}
    assert len(weights) == 2
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert "2 already done (resuming)" in again.stderr and json.loads(again.stdout) == rows
    assert {path: path.stat().st_mtime_ns for path in weights} == weights  # both trials kept, none retrained
