"""The similar training images of an image of Analyze's and Explain's galleries (app_pages/
similar_section.py) through Streamlit's AppTest: the picked image's neighbours in the best
checkpoint's planted features (atlas_features.py), said to be of that checkpoint, with the
card's prediction in the sentence; without cached features, one line and the button that
computes them in the background."""

from __future__ import annotations

import re

from atlas_features import plant_features
from fake_runs import make_run, write_checkpoint
from test_pages import choose_pair, folders, html_blocks, open_page, texts  # noqa: F401 (folders: a fixture)

from app_pages import caches
from app_pages.navigation import ANALYZE, EXPLAIN
from resnet_core import embeddings
from resnet_core.cifar import load_cifar
from resnet_core.formatting import md_escape
from resnet_core.neighbours import nearest


def test_a_cell_image_opens_its_nearest_training_images_in_the_best_checkpoints_features(folders,  # noqa: F811
                                                                                        cifar_dir):
    run_dir = make_run(folders, "similar", epochs_done=3, total_epochs=3, n_val=100, data_dir=cifar_dir)
    data = load_cifar("cifar10", cifar_dir)
    labels, classes = data.train_labels, list(data.classes)
    f = plant_features(run_dir, labels, "val", n=len(labels))  # every training image, so the gallery's too
    train = plant_features(run_dir, labels, "train", n=150)
    at = open_page(ANALYZE)
    t, p = choose_pair(at)  # a misclassified cell
    shown = [int(i) for i in re.findall(r'class="rs-card" data-index="(\d+)"', html_blocks(at)[0])]
    assert at.selectbox(key="an_similar").options == [f"#{i}: true {classes[t]}, predicted {classes[p]}" for i in shown]
    picked = shown[0]
    at.selectbox(key="an_similar").set_value(picked).run()
    assert not at.exception, [e.value for e in at.exception]
    (rows,), _ = nearest(f.features[f.indices == picked], train.features, 10)
    strip = html_blocks(at)[-1]
    assert [int(i) for i in re.findall(r'data-index="(\d+)"', strip)] == train.indices[rows].tolist()
    assert "Neighbours in the features of last.pt (epoch 3)" in texts(at)  # make_run has no best.pt
    near = train.labels[rows]
    assert md_escape(f"{(near == p).sum()} of its 10 nearest training images carry the card's predicted "
                     f"class {classes[p]} (and {(near == t).sum()} its true class {classes[t]}).") in texts(at)


def test_without_features_a_top_loss_image_offers_to_compute_them(folders, cifar_dir):  # noqa: F811
    run_dir = make_run(folders, "bare", epochs_done=3, total_epochs=3, n_val=100, data_dir=cifar_dir)
    write_checkpoint(run_dir)  # a real last.pt, which "best" falls back to, for the job
    at = open_page(EXPLAIN, {"view": "Top losses"})
    key = "ex_page_loss_similar"
    first = int(re.match(r"#(\d+)", at.selectbox(key=key).options[0]).group(1))  # the highest loss
    at.selectbox(key=key).set_value(first).run()
    assert "Similar training images need these val images' and the training images' features" in texts(at)
    for split in ("val", "train"):  # a button and a job a split, keyed as the atlas keys its own
        at.button(key=f"{key}_start_{split}").click().run()
        job = caches.jobs().get(("features", str(run_dir), split, "best"))
        assert job is not None and job.wait(60) and job.error is None
    at.run()
    assert embeddings.cached_features(run_dir, "train", "best") is not None
    assert html_blocks(at)[-1].count('class="rs-card"') == 10  # the picked image's nearest training images
    assert "nearest training images carry" in texts(at)
