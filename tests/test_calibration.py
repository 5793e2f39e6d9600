"""Calibration: reliability bins and the expected calibration error, checked by hand."""

from __future__ import annotations

import math

import numpy as np
from fake_runs import make_run

from resnet_core import runs
from resnet_core.dashboard import calibration, explain_figures


def test_bins_are_equal_width_and_right_closed():
    # 15 bins: bin m holds (m/15, (m+1)/15]; 0 goes to bin 0, 1 to bin 14.
    conf = np.array([0.0, 0.01, 1 / 15 + 1e-9, 0.5, 0.999, 1.0])
    assert calibration.bin_of(conf).tolist() == [0, 0, 1, 7, 14, 14]
    assert calibration.bin_of(np.array([0.2, 0.21]), bins=5).tolist() == [0, 1]  # 0.2 closes bin 0


def test_ece_and_bins_by_hand():
    # Five images, 15 bins:
    #   0.95, right; 0.97, wrong  -> bin 14 (14/15 = 0.933.., 1]: 2 images, accuracy 0.5, confidence 0.96
    #   0.55, right; 0.58, right  -> bin 8 (0.533.., 0.6]: 2 images, accuracy 1.0, confidence 0.565
    #   0.30, wrong               -> bin 4 (0.266.., 0.333..]: 1 image, accuracy 0.0, confidence 0.30
    conf = np.array([0.95, 0.97, 0.55, 0.58, 0.30])
    right = np.array([True, False, True, True, False])
    rel = calibration.reliability(conf, right)
    assert rel.counts.sum() == 5 and rel.counts[14] == 2 and rel.counts[8] == 2 and rel.counts[4] == 1
    assert rel.right[14] == 1 and rel.right[8] == 2 and rel.right[4] == 0
    assert rel.wrong.tolist()[14] == 1 and rel.wrong.sum() == 2
    assert rel.accuracy[14] == 0.5 and rel.accuracy[8] == 1.0 and rel.accuracy[4] == 0.0
    assert math.isclose(rel.confidence[14], 0.96) and math.isclose(rel.confidence[8], 0.565)
    assert np.isnan(rel.accuracy[0]) and np.isnan(rel.confidence[0])
    expected = 2 / 5 * abs(0.5 - 0.96) + 2 / 5 * abs(1.0 - 0.565) + 1 / 5 * abs(0.0 - 0.30)
    assert math.isclose(rel.ece, expected)  # 0.184 + 0.174 + 0.06 = 0.418
    assert math.isclose(rel.ece, 0.418)
    assert rel.edges[0] == 0 and rel.edges[-1] == 1 and len(rel.edges) == 16


def test_a_perfectly_calibrated_set_has_no_error_and_an_empty_one_nan():
    conf = np.full(10, 0.7)
    right = np.arange(10) < 7  # 70% right at 70% confidence
    assert math.isclose(calibration.reliability(conf, right).ece, 0.0, abs_tol=1e-12)
    assert math.isnan(calibration.reliability(np.array([]), np.array([], dtype=bool)).ece)


def test_records_bins_and_clicks():
    records = {"labels": np.array([1, 2, 3, 4]), "preds": np.array([1, 0, 3, 4]),
               "topk_probs": np.array([[0.95], [0.97], [0.25], [0.96]], dtype=np.float32)}
    rel = calibration.of_records(records)
    assert rel.counts[14] == 3 and rel.right[14] == 2 and rel.counts[3] == 1
    assert calibration.bin_positions(records, 14).tolist() == [1, 3, 0]  # the most confident first
    assert calibration.bin_positions(records, 5).tolist() == []
    event = {"selection": {"points": [{"x": 0.5, "customdata": [3]}, {"x": 0.9, "customdata": [14]}]}}
    assert calibration.bin_from_event(event) == 14
    assert calibration.bin_from_event({"selection": {"points": [{"customdata": {"0": 7}}]}}) == 7
    assert calibration.bin_from_event({"selection": {"points": []}}) is None
    assert calibration.bin_from_event({"selection": {"points": [{"x": 0.3}]}}) is None
    assert calibration.bin_from_event(None) is None


def test_ece_by_epoch_reads_each_recorded_epoch(tmp_path):
    run_dir = make_run(tmp_path, epochs_done=3, total_epochs=3, n_val=80)
    (run_dir / "predictions" / "val_epoch_002.npz").write_bytes(b"damaged")
    epochs, ece = calibration.ece_by_epoch(run_dir, "val")
    assert epochs.tolist() == [1, 2, 3] and np.isnan(ece[1])
    p = runs.load_predictions(run_dir, "val", 3)
    assert math.isclose(ece[2], calibration.of_records(p).ece)
    # An ECE already known (taken while the Explain page read the history) is not read again:
    # the damaged epoch 2 gets the known value, and epoch 3's file, damaged now, is not opened.
    (run_dir / "predictions" / "val_epoch_003.npz").write_bytes(b"damaged")
    _, ece = calibration.ece_by_epoch(run_dir, "val", known={2: 0.25, 3: ece[2]})
    assert ece[1] == 0.25 and math.isclose(ece[2], calibration.of_records(p).ece) and not np.isnan(ece[0])


def test_figures_carry_the_bins_for_clicks():
    rel = calibration.reliability(np.array([0.95, 0.97, 0.55]), np.array([True, False, True]))
    fig = explain_figures.reliability_figure(rel, selected=14)
    bars = fig.data[0]
    assert list(bars.customdata[14]) == [14] and bars.y[14] == 50.0
    # Each bin's count in a row above the bars and markers (on a bar's top it hid the marker there).
    counts = next(t for t in fig.data if t.name == "images")
    assert counts.mode == "text" and counts.text[14] == "2" and min(counts.y) > 100 >= max(fig.data[0].y)
    assert fig.layout.legend.y >= 1 and fig.layout.legend.yanchor == "bottom"  # over the plot, not on the counts
    hist = explain_figures.confidence_histogram_figure(rel)
    assert [t.name for t in hist.data] == ["right", "wrong"] and hist.data[1].y[14] == 1
    ece = explain_figures.ece_figure(np.array([1, 2]), np.array([0.1, np.nan]), current=2)
    assert list(ece.data[0].y) == [10.0, None]
