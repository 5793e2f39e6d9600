"""Compare's curves through Streamlit's AppTest: three seeds of one config and another run
drawn as two curves, the seeds' mean with bands; the smoothing slider and the log-scale
toggle redraw them; averaging can be switched off. (AppTest cannot fire run_every: the
live refresh is a fragment as the Monitor's, see /work/shared/notes on fragments.)"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from fake_runs import make_run
from test_pages import folders, open_page, sleeper  # noqa: F401 (folders, sleeper: fixtures)

from app_pages.navigation import COMPARE


def _values(data) -> np.ndarray:
    """A trace's x or y as sent to the browser: a list, or plotly's typed array of a numpy one."""
    if isinstance(data, dict):
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=np.dtype(data["dtype"])).astype(float)
    return np.array(data, dtype=float)


def _figure(at) -> dict:
    assert not at.exception, [e.value for e in at.exception]
    return json.loads(next(c for c in at.get("plotly_chart") if c.key == "cmp_curves").proto.spec)


def _trace(fig: dict, name: str) -> dict:
    return next(t for t in fig["data"] if t.get("name") == name)


def test_three_seeds_and_another_run_show_two_curves_with_bands_smoothing_and_log_scale(folders):  # noqa: F811
    seeds = [make_run(folders, f"s{i}", seed=i) for i in range(3)]
    other = make_run(folders, "deep", depth=56)
    at = open_page(COMPARE, {"runs": ",".join(r.name for r in [*seeds, other])})
    fig = _figure(at)
    legend = [t["name"] for t in fig["data"] if t.get("showlegend") is not False]
    assert legend == ["ResNet-20 · mean of 3 seeds", f"ResNet-56 · {other.name}"]
    filled = [t for t in fig["data"] if t.get("fill") == "tonexty"]
    assert len(filled) == 2 and all(t["legendgroup"] == "ResNet-20 · mean of 3 seeds" for t in filled)
    # The validation mean: make_run's val_acc is 0.25 + 0.15 e + seed / 100, so the mean is seed 1's.
    val = _trace(fig, "ResNet-20 · mean of 3 seeds")
    assert _values(val["y"]) == pytest.approx([100 - 100 * (0.26 + 0.15 * e) for e in (1, 2, 3)])
    assert "Shaded" in "".join(c.value for c in at.caption)

    train = "ResNet-20 · mean of 3 seeds · train"
    at.slider(key="cmp_smoothing").set_value(0.0).run()
    raw = _values(_trace(_figure(at), train)["y"])
    at.slider(key="cmp_smoothing").set_value(0.9).run()
    smooth = _values(_trace(_figure(at), train)["y"])
    assert len(raw) == len(smooth) and not np.allclose(raw, smooth)
    assert _figure(at)["layout"]["yaxis"].get("type") in (None, "linear")
    at.toggle(key="cmp_log").set_value(True).run()
    assert _figure(at)["layout"]["yaxis"]["type"] == "log"

    # Min–max: the validation band's edges (the two traces before its mean) are seeds 2 and 0.
    at.segmented_control(key="cmp_band").set_value("min-max").run()
    fig = _figure(at)
    names = [t.get("name") for t in fig["data"]]
    low, high, val = fig["data"][names.index("ResNet-20 · mean of 3 seeds") - 2:][:3]
    assert high["fill"] == "tonexty" and "min–max" in val["hovertemplate"]
    assert _values(low["y"]) == pytest.approx([100 - 100 * (0.27 + 0.15 * e) for e in (1, 2, 3)])
    assert _values(high["y"]) == pytest.approx([100 - 100 * (0.25 + 0.15 * e) for e in (1, 2, 3)])
    at.toggle(key="cmp_average").set_value(False).run()
    fig = _figure(at)
    assert not any(t.get("fill") for t in fig["data"])
    assert len([t for t in fig["data"] if t.get("showlegend") is not False]) == 4


def test_a_seed_still_training_is_averaged_where_it_has_epochs_and_the_chart_is_live(folders, sleeper):  # noqa: F811
    done = make_run(folders, "done", seed=1)
    live = make_run(folders, "live", seed=2, state="running", pid=sleeper.pid, epochs_done=1)
    at = open_page(COMPARE, {"runs": f"{done.name},{live.name}"})
    val = _trace(_figure(at), "ResNet-20 · mean of 2 seeds")
    assert [n for n, _ in val["customdata"]] == [2, 1, 1]  # the live seed has done epoch 1 only
    assert _values(val["y"])[1:] == pytest.approx([100 - 100 * (0.26 + 0.15 * e) for e in (2, 3)])
    assert "no band" in val["customdata"][1][1]
    assert at.toggle(key="cmp_live").value is True
    sleeper.kill()  # the trainer dies: the run reads as crashed, and the chart stops refreshing
    sleeper.wait()
    at.run()
    assert not at.exception and "cmp_live" not in [t.key for t in at.toggle]
