"""What the dashboard draws and offers around a model, without Streamlit: heat colours and
overlays, Grad-CAM on gallery cards, the Predict page's uploads and cards, the Analyze
page's downloads (CSV and a PIL-drawn PNG of the confusion matrix)."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pandas as pd
from fake_runs import fake_predictions
from PIL import Image

from resnet_core.cifar import CLASSES
from resnet_core.dashboard import downloads, figure_style, gallery_cards, gallery_records, heatmap, uploads


def _decode(uri: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


def test_the_heat_ramp_runs_from_dark_blue_to_red_and_clips():
    colours = heatmap.ramp(np.array([-1.0, 0.0, 0.5, 1.0, 2.0, np.nan]))
    assert colours.dtype == np.uint8 and colours.shape == (6, 3)
    assert tuple(colours[1]) == (0, 0, 128) and tuple(colours[3]) == (215, 0, 0) and tuple(colours[2]) == (0, 230, 230)
    assert (colours[0] == colours[1]).all() and (colours[4] == colours[3]).all() and (colours[5] == colours[1]).all()


def test_an_overlay_leaves_the_image_where_the_map_is_0_and_tints_it_where_it_is_high():
    image = np.full((3, 32, 32), 100, dtype=np.uint8)
    cam = np.zeros((32, 32))
    cam[:8, :8] = 1.0
    out = heatmap.overlay(image, cam)
    assert out.shape == (32, 32, 3) and (out[8:, 8:] == 100).all()
    red = heatmap.ramp(np.array(1.0))
    assert np.allclose(out[0, 0], 0.5 * 100 + 0.5 * red, atol=1)


def test_gallery_cards_take_heatmaps_by_image_index():
    preds = fake_predictions(6, seed=0, source_size=20)
    images = np.random.default_rng(0).integers(0, 256, (20, 3, 32, 32), dtype=np.uint8)
    items = gallery_records.records(preds, [0, 1, 2])
    cam = np.linspace(0, 1, 32 * 32).reshape(32, 32)
    maps = {items[0].index: cam}  # one card with a map, the others without
    extras = gallery_cards.CardExtras(heatmaps=maps, heatmap_title="Grad-CAM <of> pred")
    html = gallery_cards.gallery_html(items, images, CLASSES, extras=extras)
    srcs = re.findall(r'src="(data:image/png;base64,[^"]+)"', html)
    assert html.count('class="rs-heatmap"') == 1 and 'title="Grad-CAM &lt;of&gt; pred"' in html
    assert (_decode(srcs[0]) == heatmap.overlay(images[items[0].index], cam)).all()
    assert srcs[1] == gallery_cards.png_data_uri(images[items[1].index])
    no_maps = gallery_cards.CardExtras(heatmaps={})
    assert gallery_cards.gallery_html(items, images, CLASSES) == gallery_cards.gallery_html(items, images, CLASSES,
                                                                                             extras=no_maps)


def _png(size=(40, 30), colour=(10, 200, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def test_uploads_are_read_one_by_one_and_a_bad_one_keeps_its_reason():
    read = uploads.read_uploads([("good.png", _png()), ("bad.jpg", b"\xff\xd8 broken"), ("empty.png", b"")])
    assert [u.name for u in read] == ["good.png", "bad.jpg", "empty.png"]
    assert read[0].image.shape == (3, 32, 32) and read[0].problem is None
    assert read[1].image is None and read[1].problem.startswith("bad.jpg: ")
    assert read[2].problem == "empty.png: empty file"


def test_a_prediction_card_shows_the_input_its_map_and_the_top_classes():
    image = np.zeros((3, 32, 32), dtype=np.uint8)
    card = uploads.prediction_card_html("<cat>.png", image, np.ones((32, 32)), [("cat", 0.8), ("dog", 0.15)])
    assert 'data-file="&lt;cat&gt;.png" data-top="cat"' in card and "<cat>" not in card
    srcs = re.findall(r'src="(data:image/png;base64,[^"]+)"', card)
    assert (_decode(srcs[0]) == 0).all() and (_decode(srcs[1]) == heatmap.overlay(image, np.ones((32, 32)))).all()
    assert "width:80.0%" in card and ">80.0%</span>" in card and ">15.0%</span>" in card
    # The top class in the studio's neutral blue: red means wrong everywhere else.
    assert gallery_cards.WRONG_COLOUR not in card and uploads.TOP_CLASS_COLOUR == figure_style.TRAIN_COLOUR
    assert f"width:80.0%;height:12px;border-radius:2px;background:{figure_style.TRAIN_COLOUR}" in card


def test_the_predictions_csv_has_one_row_per_record_with_names_and_the_top_k():
    preds = fake_predictions(50, seed=3, k=3)
    table = pd.read_csv(io.BytesIO(downloads.predictions_csv(preds, CLASSES)))
    assert list(table.columns) == ["index", "label", "pred", "confidence", "loss", "top1_class", "top1_prob",
                                   "top2_class", "top2_prob", "top3_class", "top3_prob"]
    assert len(table) == 50 and (table["index"] == preds["indices"]).all()
    assert list(table["label"]) == [CLASSES[i] for i in preds["labels"]]
    assert (table["pred"] == table["top1_class"]).all()
    assert np.allclose(table["confidence"], preds["topk_probs"][:, 0], atol=1e-6)
    assert np.allclose(table["loss"], preds["loss"], rtol=1e-5)


def test_the_confusion_matrix_as_csv_and_as_a_png_of_coloured_cells():
    cm = np.array([[50, 2, 0], [7, 40, 3], [0, 0, 9]])
    names = ["cat", "dog", "ship"]
    table = pd.read_csv(io.BytesIO(downloads.confusion_csv(cm, names)), index_col=0)
    assert list(table.columns) == names and list(table.index) == names and (table.to_numpy() == cm).all()
    picture = Image.open(io.BytesIO(downloads.confusion_png(cm, names, cell=40, title="run")))
    assert picture.format == "PNG"
    pixels = np.asarray(picture.convert("RGB"))
    # The largest count's cell is the darkest blue, an empty cell the palest; both hold their colour
    # in a corner, away from the written count.
    label_w = pixels.shape[1] - 3 * 40 - 8
    top = pixels.shape[0] - 3 * 40 - 28
    darkest, empty = pixels[top + 3, label_w + 3], pixels[top + 3, label_w + 2 * 40 + 3]  # cells (0, 0), (0, 2)
    assert tuple(darkest) == tuple(heatmap.ramp(np.array(1.0), heatmap.BLUES))
    assert tuple(empty) == tuple(heatmap.ramp(np.array(0.0), heatmap.BLUES))
