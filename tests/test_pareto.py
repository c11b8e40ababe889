import csv
import functools
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tuner_app.analysis import front_table, pareto_plot, pareto_report
from tuner_app.errors import TunerAppError
from tuner_app.model.architecture import configured
from tuner_app.model.space import search_space
from tuner_app.search import pareto_geometry

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SEED_2D_PARAMS = [49_956_064, 50_472_672, 22_368_624, 22_885_232, 8_586_128, 9_102_736, 2_640_848, 3_157_456]
SEED_1D_PARAMS = [32_736_480, 33_253_088, 16_290_160, 16_806_768, 7_996_304, 8_512_912, 3_689_424, 4_206_032,
                  1_338_448, 1_855_056]
STAIRCASE = [(10.0, 0.5), (100.0, 0.7), (1000.0, 0.9)]


def _row(run_id, val, params, test=None, status="FINISHED", model="cnn2d", **hyperparameters):
    metrics = {"params_total": float(params), "params_conv": 10.0, "params_fc": float(params) - 10,
               "macs": float(params) * 100, "model_bytes": float(params) * 4 + 1000}
    if val is not None:
        metrics["best_val_accuracy"] = val
    if test is not None:
        metrics["test_accuracy"] = test
    values = {"conv_layers": 2, "fc_layers": 1, "fc_units_1": 64, "batch_norm": False, "head": "gap",
              **hyperparameters}
    return {"run_id": run_id, "trial_id": run_id.upper(), "status": status, "outcome": "COMPLETED",
            "trial_dir": f"/t/{run_id}", "model": model, "hyperparameters": values, "metrics": metrics}


def _measured(row, **metrics):
    """row with more metrics, as a search that measured the int8 model logs them (None: the run lacks it)."""
    row["metrics"].update({name: value for name, value in metrics.items() if value is not None})
    return row


def _device_trials():
    """By params the front is s, p, q, r; by flash q, r (p is bigger and worse than q; s has no flash)."""
    return [_measured(_row("p", 0.80, 100), flash_bytes=50_000, ram_bytes=9_000, latency_ms=0.25),
            _measured(_row("q", 0.85, 1000), flash_bytes=20_000, ram_bytes=4_000, latency_ms=0.125),
            _measured(_row("r", 0.90, 10_000), flash_bytes=30_000, ram_bytes=8_000, latency_ms=1.5),
            _row("s", 0.50, 10)]


def _int8_trials():
    """On float accuracy the front is c, a; on int8 accuracy d, a, b (c has no int8 accuracy; a loses most)."""
    return [_measured(_row("a", 0.90, 100, test=0.89), val_accuracy_int8=0.60, test_accuracy_int8=0.58),
            _measured(_row("b", 0.85, 1000, test=0.84), val_accuracy_int8=0.88, test_accuracy_int8=0.86),
            _row("c", 0.70, 10, test=0.70),
            _measured(_row("d", 0.50, 50, test=0.45), val_accuracy_int8=0.55, test_accuracy_int8=0.40)]


def _trials():
    """Five eligible rows (front: c, b, a, d by size) and two left out."""
    return [_row("a", 0.91, 1000, test=0.80, conv_layers=3), _row("b", 0.895, 100, test=0.99, conv_layers=4),
            _row("c", 0.85, 10, test=0.70, conv_layers=1), _row("d", 0.92, 100_000, test=0.50, fc_layers=2,
                                                                 fc_units_2=32, batch_norm=True),
            _row("e", 0.80, 5000, test=0.95), _row("f", 0.99, 5, status="FAILED"), _row("g", None, 50)]


@pytest.mark.parametrize("points, expected", [
    ([], []),
    ([(5.0, 0.5)], [0]),
    ([(10.0, 0.9), (10.0, 0.9), (20.0, 0.8)], [0, 1]),  # exact duplicates are both on the front
    ([(10.0, 0.8), (10.0, 0.9)], [1]),  # equal x, lower y: dominated
    ([(20.0, 0.9), (10.0, 0.9)], [1]),  # equal y, larger x: dominated
    ([(1000.0, 0.9), (10.0, 0.5), (100.0, 0.7)], [1, 2, 0]),  # all on the front, sorted by x
    ([(10.0, 0.5), (20.0, 0.4), (30.0, 0.6)], [0, 2]),  # (20, 0.4) dominated by (10, 0.5)
    ([(30.0, 0.6), (10.0, 0.5), (30.0, 0.6), (10.0, 0.5)], [1, 3, 0, 2]),  # duplicates ordered by index
])
def test_non_dominated(points, expected):
    assert pareto_geometry.non_dominated(points) == expected


def test_non_dominated_rejects_nan():
    with pytest.raises(TunerAppError, match="finite"):
        pareto_geometry.non_dominated([(1.0, float("nan"))])


def test_hypervolume_of_a_staircase_log_and_linear():
    reference = (10_000.0, 0.0)
    # log10: (4-1)*0.5 + (4-2)*(0.7-0.5) + (4-3)*(0.9-0.7)
    assert pareto_geometry.hypervolume(STAIRCASE, reference) == pytest.approx(2.1, abs=1e-12)
    # linear: 9990*0.5 + 9900*0.2 + 9000*0.2
    assert pareto_geometry.hypervolume(STAIRCASE, reference, log_x=False) == pytest.approx(8775.0, abs=1e-9)
    # a dominated point and a duplicate add nothing
    extra = STAIRCASE + [(500.0, 0.6), (100.0, 0.7)]
    assert pareto_geometry.hypervolume(extra, reference) == pytest.approx(2.1, abs=1e-12)


def test_hypervolume_ignores_points_outside_the_reference_box():
    outside = STAIRCASE + [(20_000.0, 0.95)]  # x beyond x_ref
    assert pareto_geometry.hypervolume(outside, (10_000.0, 0.0)) == pytest.approx(2.1, abs=1e-12)
    # (10, 0.5) is below y_ref = 0.6: (4-2)*(0.7-0.6) + (4-3)*(0.9-0.7)
    assert pareto_geometry.hypervolume(STAIRCASE, (10_000.0, 0.6)) == pytest.approx(0.4, abs=1e-12)
    assert pareto_geometry.hypervolume([(20_000.0, 0.95)], (10_000.0, 0.0)) == 0.0


@pytest.mark.parametrize("size, expected", [
    (10.0, 0.0), (100.0, 0.0),  # sizes the front holds
    (31.6, 1.0), (500.0, 2.0), (9_000.0, 2.0),  # inside the gaps 10-100 (1 decade) and 100-10,000 (2 decades)
    (1.0, 1.0), (1e6, 2.0),  # beyond either end: the distance out to it
])
def test_gap_width_in_decades(size, expected):
    staircase = [(10.0, 0.5), (100.0, 0.7), (10_000.0, 0.9)]
    assert pareto_geometry.gap_width(size, staircase) == pytest.approx(expected)
    assert pareto_geometry.gap_width(size, []) == float("inf")


def test_front_points_are_the_non_dominated_by_size():
    assert pareto_geometry.front_points(STAIRCASE + [(500.0, 0.6)]) == sorted(STAIRCASE)


@pytest.mark.parametrize("points, expected", [
    ([(10.0, 0.5), (100.0, 0.88), (1000.0, 0.9), (10_000.0, 0.91)], 1),  # L-shape: the corner
    ([(10.0, 0.5), (100.0, 0.6), (1000.0, 0.7)], 2),  # straight: the most accurate
    ([(10.0, 0.5), (100.0, 0.52), (1000.0, 0.9)], 2),  # sagging: the most accurate
    ([(10.0, 0.5)], 0),
    ([(10.0, 0.5), (100.0, 0.6)], 1),
    ([(10.0, 0.5), (10.0, 0.5)], 0),
])
def test_knee(points, expected):
    assert pareto_geometry.knee(points) == expected


def test_select_rules():
    rows = _trials()
    assert pareto_report.select(rows, "best")["run_id"] == "d"  # f is more accurate but FAILED
    assert pareto_report.select(rows, "smallest-within:0.01")["run_id"] == "a"  # 0.91 >= 0.92 - 0.01
    assert pareto_report.select(rows, "smallest-within:0.05")["run_id"] == "b"
    assert pareto_report.select(rows, "smallest-within:0")["run_id"] == "d"
    assert pareto_report.select(rows, "knee")["run_id"] == "b"
    assert pareto_report.select(rows, "smallest-within:0.01", x="macs")["run_id"] == "a"


def test_smallest_within_admits_the_boundary_despite_float_rounding():
    rows = [_row("top", 0.52, 1000), _row("edge", 0.47, 10)]  # 0.52 - 0.05 == 0.47000000000000003 in floats
    assert pareto_report.select(rows, "smallest-within:0.05")["run_id"] == "edge"


def test_select_best_breaks_ties_by_size():
    rows = [_row("big", 0.9, 500), _row("small", 0.9, 50), _row("small2", 0.9, 50)]
    assert pareto_report.select(rows, "best")["run_id"] == "small"


def test_test_accuracy_never_changes_the_choice():
    rows = _trials() + [_row("h", 0.10, 1, test=1.0)]  # the best test accuracy, the worst validation
    flipped = [dict(row, metrics={**row["metrics"], "test_accuracy": 1 - row["metrics"].get("test_accuracy", 0)})
               for row in rows]
    for rule in ("best", "smallest-within:0.01", "smallest-within:0.2", "knee"):
        chosen = pareto_report.select(rows, rule)["run_id"]
        assert chosen == pareto_report.select(flipped, rule)["run_id"]
        assert chosen != "h"


@pytest.mark.parametrize("rule, message", [
    ("fastest", "unknown selection rule 'fastest'"),
    ("best:1", "unknown selection rule 'best:1'"),
    ("smallest-within", "malformed selection rule 'smallest-within:'"),
    ("smallest-within:abc", "malformed selection rule 'smallest-within:abc'"),
    ("smallest-within:-0.1", r"D must be a number in \[0, 1\)"),
    ("smallest-within:1", r"D must be a number in \[0, 1\)"),
    ("smallest-within:nan", "malformed selection rule 'smallest-within:nan'"),
])
def test_select_rejects_malformed_rules(rule, message):
    with pytest.raises(TunerAppError, match=message):
        pareto_report.select(_trials(), rule)


def test_select_without_eligible_rows():
    with pytest.raises(TunerAppError, match=r"no finished trial .*\(2 left out\)"):
        pareto_report.select([_row("f", 0.99, 5, status="FAILED"), _row("k", 0.9, 5, status="KILLED")], "best")


def test_architecture_strings():
    seed_like = _row("s", 0.9, 9, conv_layers=3, fc_layers=2, fc_units_1=1024, fc_units_2=512, batch_norm=True,
                     head="flatten", kernel_size=5, filters=8, filter_growth=2)
    narrow = _row("n", 0.9, 9, model="cnn1d", conv_layers=2, fc_layers=0, kernel_size=25, filters=16,
                  filter_growth=1)
    assert pareto_report.architecture(seed_like) == "2D conv3(5x5, 8..32) fc2(1024,512) BN flatten"
    assert pareto_report.architecture(narrow) == "1D conv2(25, 16) fc0 gap"


@pytest.fixture
def agg_renders(monkeypatch):
    """The files (paths, not in-memory buffers) that matplotlib's Agg canvas printed PNGs to."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    calls = []
    original = FigureCanvasAgg.print_png

    @functools.wraps(original)  # matplotlib filters keyword arguments by the printer's signature
    def counting_print_png(self, target, *args, **kwargs):
        if isinstance(target, (str, Path)):
            calls.append(Path(target))
        return original(self, target, *args, **kwargs)

    monkeypatch.setattr(FigureCanvasAgg, "print_png", counting_print_png)
    return calls


@pytest.mark.parametrize("reference", [None, "seed"])
def test_analyse_writes_csv_and_png(tmp_path, agg_renders, reference):
    analysis = pareto_report.analyse(_trials(), tmp_path / "out", reference=reference)
    assert [row["run_id"] for row in analysis.front] == ["c", "b", "a", "d"]
    assert [row["run_id"] for row in analysis.all_rows] == ["c", "b", "a", "e", "d"]
    assert analysis.left_out == 2 and analysis.reference_point == (1e8, 0.0)  # the fixed default for params
    # log10 sizes 1, 2, 3, 5 against 8: 7*0.85 + 6*0.045 + 5*0.015 + 3*0.01
    assert analysis.hypervolume == pytest.approx(6.325, abs=1e-9)
    with analysis.csv_path.open(newline="") as handle:
        lines = list(csv.DictReader(handle))
    assert len(analysis.csv_path.read_text().splitlines()) == 1 + 5
    assert [line["pareto"] for line in lines] == ["true", "true", "true", "false", "true"]
    assert lines[4]["architecture"] == "2D conv2 fc2(64,32) BN gap" and lines[4]["fc_units_2"] == "32"
    columns = ("params_total", "best_val_accuracy", "test_accuracy")
    assert [lines[1][key] for key in columns] == ["100", "0.895", "0.99"]
    assert analysis.png_path.read_bytes()[:8] == PNG_MAGIC
    (rendered,) = agg_renders  # once, into a temporary beside pareto.png that became it
    assert rendered.parent == analysis.png_path.parent and rendered.name.startswith(".pareto.png.")


def test_analyse_other_axes_skip_the_seed_with_a_note(tmp_path, caplog):
    rows = _trials() + [_row("n", 0.5, 2)]  # no test accuracy: still on the front, blank in the CSV
    analysis = pareto_report.analyse(rows, tmp_path, x="macs", y="test", reference="seed", name="macs")
    assert analysis.csv_path.name == "macs.csv" and analysis.png_path.read_bytes()[:8] == PNG_MAGIC
    assert analysis.front[0]["run_id"] == "n" and analysis.y == "test"
    assert analysis.notes == ["seed study not shown: it publishes parameter counts only, not macs"]
    assert "seed study not shown" in caplog.text
    assert next(csv.DictReader(analysis.csv_path.read_text().splitlines()))["test_accuracy"] == ""


@pytest.mark.parametrize("kwargs, message", [
    ({"x": "flops"}, "unknown Pareto size axis 'flops'"),
    ({"y": "train"}, "unknown Pareto accuracy axis 'train'"),
    ({"reference": "paper"}, "unknown Pareto reference 'paper'"),
    ({"accuracy": "fp16"}, "unknown Pareto accuracy 'fp16'; choose one of float, int8"),
])
def test_analyse_rejects_unknown_options(tmp_path, kwargs, message):
    with pytest.raises(TunerAppError, match=message):
        pareto_report.analyse(_trials(), tmp_path, **kwargs)


def test_analyse_without_eligible_rows(tmp_path):
    with pytest.raises(TunerAppError, match="no finished trial with best_val_accuracy and params_total among 1"):
        pareto_report.analyse([_row("f", 0.99, 5, status="FAILED")], tmp_path)


def test_format_table_lists_the_front_in_order(tmp_path):
    analysis = pareto_report.analyse(_trials(), tmp_path)
    table = front_table.format_table(analysis).splitlines()
    assert table[0].split() == ["Architecture", "Val", "Acc", "Test", "Acc", "Params", "Trial"]
    assert [line.split("  ")[0] for line in table[1:5]] == [pareto_report.architecture(row) for row in analysis.front]
    assert table[1].split()[-3:] == ["0.7000", "10", "C"] and "100,000" in table[4]
    assert table[5].startswith("4 of 5 trials on the front") and "2 runs left out" in table[5]
    assert table[6] == front_table.SPEAKER_LINES[None]  # these rows carry no speakers
    assert table[7] == ("hypervolume 6.3250 in (log10 params_total, validation accuracy) against reference point "
                        "(params_total=100,000,000, validation accuracy=0.00)")
    assert table[8].startswith("reference point: the fixed default for params_total")


@pytest.mark.parametrize("flags, expected, line", [
    ([True, True], True, "never heard in training"),
    ([True, False], False, "voices heard in training"),
    ([True, None], None, "unknown"),
])
def test_the_front_says_whether_its_split_is_speaker_disjoint(tmp_path, flags, expected, line):
    rows = [{**row, "speaker_disjoint": flags[index % 2]} for index, row in enumerate(_trials())]
    analysis = pareto_report.analyse(rows, tmp_path)
    assert analysis.speaker_disjoint is expected
    assert json.loads(analysis.json_path.read_text())["speaker_disjoint"] is expected
    assert line in front_table.format_table(analysis).splitlines()[-3]
    assert (pareto_report.SEEN_SPEAKERS_NOTE in analysis.notes) is (expected is False)  # also on the plot


def test_every_size_axis_has_a_fixed_hypervolume_reference_and_every_searched_one_is_an_axis():
    assert set(pareto_report.SIZE_AXES) <= set(search_space.HV_REFERENCES)
    # a search's final analysis is on its objective
    assert set(search_space.SIZE_OBJECTIVES) <= set(pareto_report.SIZE_AXES)


def _ids(rows):
    return [row["run_id"] for row in rows]


def test_the_front_on_flash_differs_from_the_front_on_params(tmp_path):
    by_params = pareto_report.analyse(_device_trials(), tmp_path / "params")
    by_flash = pareto_report.analyse(_device_trials(), tmp_path / "flash", x="flash_bytes")
    assert _ids(by_params.front) == ["s", "p", "q", "r"] and by_params.left_out == 0
    assert _ids(by_flash.front) == ["q", "r"] and _ids(by_flash.all_rows) == ["q", "r", "p"]
    assert by_flash.left_out == 1  # s: no flash_bytes
    assert by_flash.reference_point == search_space.HV_REFERENCES["flash_bytes"]
    x_ref = math.log10(by_flash.reference_point[0])
    expected = (x_ref - math.log10(20_000)) * 0.85 + (x_ref - math.log10(30_000)) * (0.90 - 0.85)
    assert by_flash.hypervolume == pytest.approx(expected, abs=1e-9)
    assert pareto_report.select(_device_trials(), "smallest-within:0.1")["run_id"] == "p"
    assert pareto_report.select(_device_trials(), "smallest-within:0.1", x="flash_bytes")["run_id"] == "q"


@pytest.mark.parametrize("x", ["ram_bytes", "latency_ms"])
def test_the_other_device_axes(tmp_path, x):
    analysis = pareto_report.analyse(_device_trials(), tmp_path, x=x)
    assert _ids(analysis.front) == ["q", "r"] and analysis.left_out == 1  # p: more RAM and slower than q
    assert json.loads(analysis.json_path.read_text())["x"] == x
    assert analysis.png_path.read_bytes()[:8] == PNG_MAGIC


def test_the_csv_has_the_device_costs_and_int8_accuracies(tmp_path):
    rows = _device_trials() + [_int8_trials()[0]]
    analysis = pareto_report.analyse(rows, tmp_path)
    with analysis.csv_path.open(newline="") as handle:
        lines = {line["run_id"]: line for line in csv.DictReader(handle)}
    columns = ("flash_bytes", "ram_bytes", "latency_ms", "val_accuracy_int8", "test_accuracy_int8")
    assert [lines["q"][name] for name in columns] == ["20000", "4000", "0.125", "", ""]  # latency not rounded
    assert [lines["s"][name] for name in columns] == ["", "", "", "", ""]  # an old run: measured nothing
    assert [lines["a"][name] for name in columns] == ["", "", "", "0.6", "0.58"]


def test_int8_accuracy_chooses_the_front_and_leaves_out_runs_without_it(tmp_path):
    by_float = pareto_report.analyse(_int8_trials(), tmp_path / "float")
    by_int8 = pareto_report.analyse(_int8_trials(), tmp_path / "int8", accuracy="int8")
    assert _ids(by_float.front) == ["c", "a"] and by_float.left_out == 0 and by_float.accuracy == "float"
    assert _ids(by_int8.front) == ["d", "a", "b"] and _ids(by_int8.all_rows) == ["d", "a", "b"]
    assert by_int8.left_out == 1  # c: no val_accuracy_int8
    x_ref = math.log10(search_space.HV_REFERENCES["params_total"][0])
    expected = (x_ref - math.log10(50)) * 0.55 + (x_ref - 2) * 0.05 + (x_ref - 3) * 0.28
    assert by_int8.hypervolume == pytest.approx(expected, abs=1e-9)
    summary = json.loads(by_int8.json_path.read_text())
    assert (summary["accuracy"], summary["accuracy_metric"]) == ("int8", "val_accuracy_int8")
    assert summary["front_run_ids"] == ["d", "a", "b"]
    assert json.loads(by_float.json_path.read_text())["accuracy_metric"] == "best_val_accuracy"


def test_int8_accuracy_selects_on_val_accuracy_int8():
    rows = _int8_trials()
    assert pareto_report.select(rows, "best")["run_id"] == "a"
    assert pareto_report.select(rows, "best", accuracy="int8")["run_id"] == "b"
    assert pareto_report.select(rows, "smallest-within:0.1", accuracy="int8")["run_id"] == "b"  # a: 0.60, below 0.78
    assert pareto_report.eligible_rows(rows, accuracy="int8")[1] == 1
    with pytest.raises(TunerAppError, match=r"no finished trial with val_accuracy_int8 .*\(1 left out\)"):
        pareto_report.select([_row("old", 0.9, 10)], "best", accuracy="int8")


def test_int8_test_accuracy_is_what_y_test_plots(tmp_path, monkeypatch):
    drawn = []
    original = pareto_plot._xy

    def recording_xy(rows, x, y_metric):
        drawn.append(y_metric)
        return original(rows, x, y_metric)

    monkeypatch.setattr(pareto_plot, "_xy", recording_xy)
    pareto_report.analyse(_int8_trials(), tmp_path / "int8", y="test", accuracy="int8")
    pareto_report.analyse(_int8_trials(), tmp_path / "float", y="test")
    assert drawn == ["test_accuracy_int8"] * 2 + ["test_accuracy"] * 2  # trials, then the front


def test_format_table_shows_device_costs_and_int8_accuracies_the_front_has(tmp_path):
    rows = [_measured(row, val_accuracy_int8=0.8 + index / 100) for index, row in enumerate(_device_trials()[:3])]
    analysis = pareto_report.analyse(rows, tmp_path, x="flash_bytes", accuracy="int8")
    table = front_table.format_table(analysis).splitlines()
    assert table[0].split() == ["Architecture", "Val", "Acc", "Test", "Acc", "Int8", "Val", "Flash", "RAM",
                                "Latency", "ms", "Trial"]  # no int8 test accuracy: not a column
    assert table[1].split()[-6:] == ["-", "0.8100", "20,000", "4,000", "0.125", "Q"]
    assert "chosen on int8 validation accuracy" in table[3]
    assert "(log10 flash_bytes, int8 validation accuracy)" in table[5]
    assert table[5].endswith("(flash_bytes=1,000,000,000, int8 validation accuracy=0.00)")


def test_seed_points_transcribe_the_published_tables():
    points = pareto_report.seed_points()
    assert len(points) == 36  # 2D: 4 conv x 2 FC x BN off/on; 1D: 5 x 2 x 2; the 2D 5-conv "X" rows left out
    plain = {(p["model"], p["conv_layers"], p["fc_layers"]): p for p in points if not p["batch_norm"]}
    assert [plain["cnn2d", conv, fc]["params"] for conv in range(1, 5) for fc in (1, 2)] == SEED_2D_PARAMS
    assert [plain["cnn1d", conv, fc]["params"] for conv in range(1, 6) for fc in (1, 2)] == SEED_1D_PARAMS
    assert all(p["params_published"] for p in plain.values())
    for p in points:
        if p["batch_norm"]:  # derived: + 4 per conv channel, channels 8, 16, 32, ...
            base = plain[p["model"], p["conv_layers"], p["fc_layers"]]["params"]
            assert p["params"] == base + 32 * (2 ** p["conv_layers"] - 1) and not p["params_published"]
    assert ("cnn2d", 5, 1) not in plain
    bn = {(p["model"], p["conv_layers"], p["fc_layers"]): p["accuracy"] for p in points if p["batch_norm"]}
    assert (plain["cnn2d", 3, 1]["accuracy"], bn["cnn2d", 3, 2], bn["cnn1d", 5, 2]) == (0.9119, 0.9234, 0.9240)


def test_seed_points_match_the_hypermodel_counts():
    from tuner_app.analysis import pareto_report

    root = Path(__file__).resolve().parents[1] / "search_spaces"
    seed_spaces = {"cnn1d": search_space.load(root / "seed_1d.yaml"), "cnn2d": search_space.load(root / "seed_2d.yaml")}
    for point in pareto_report.seed_points():
        space = seed_spaces[point["model"]]
        values = {name: spec.get("value") for name, spec in space.hyperparameters.items()}
        values.update({key: point[key] for key in ("conv_layers", "fc_layers", "batch_norm")})
        assert configured.sizes(space, values)["params_total"] == point["params"], point["label"]


def test_import_loads_neither_matplotlib_nor_mlflow_nor_click():
    code = ("import sys, tuner_app.analysis.pareto_report; "
            "print(sorted({'matplotlib', 'mlflow', 'click'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
