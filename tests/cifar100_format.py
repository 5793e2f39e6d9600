"""CIFAR-100 in the exact official python format, generated: this machine has no copy.

``cifar-100-python/`` holds ``train`` and ``test`` (dicts with bytes keys ``filenames``,
``batch_label``, ``fine_labels``, ``coarse_labels``, ``data``: uint8 (N, 3072)) and ``meta``
(``fine_label_names``, ``coarse_label_names``), pickled as the official Python 2 files
(protocol 2, str as bytes). The names and the fine -> superclass grouping are the dataset's own.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from conftest import synthetic_images

SUPERCLASS_MEMBERS = {
    "aquatic_mammals": ("beaver", "dolphin", "otter", "seal", "whale"),
    "fish": ("aquarium_fish", "flatfish", "ray", "shark", "trout"),
    "flowers": ("orchid", "poppy", "rose", "sunflower", "tulip"),
    "food_containers": ("bottle", "bowl", "can", "cup", "plate"),
    "fruit_and_vegetables": ("apple", "mushroom", "orange", "pear", "sweet_pepper"),
    "household_electrical_devices": ("clock", "keyboard", "lamp", "telephone", "television"),
    "household_furniture": ("bed", "chair", "couch", "table", "wardrobe"),
    "insects": ("bee", "beetle", "butterfly", "caterpillar", "cockroach"),
    "large_carnivores": ("bear", "leopard", "lion", "tiger", "wolf"),
    "large_man-made_outdoor_things": ("bridge", "castle", "house", "road", "skyscraper"),
    "large_natural_outdoor_scenes": ("cloud", "forest", "mountain", "plain", "sea"),
    "large_omnivores_and_herbivores": ("camel", "cattle", "chimpanzee", "elephant", "kangaroo"),
    "medium_mammals": ("fox", "porcupine", "possum", "raccoon", "skunk"),
    "non-insect_invertebrates": ("crab", "lobster", "snail", "spider", "worm"),
    "people": ("baby", "boy", "girl", "man", "woman"),
    "reptiles": ("crocodile", "dinosaur", "lizard", "snake", "turtle"),
    "small_mammals": ("hamster", "mouse", "rabbit", "shrew", "squirrel"),
    "trees": ("maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"),
    "vehicles_1": ("bicycle", "bus", "motorcycle", "pickup_truck", "train"),
    "vehicles_2": ("lawn_mower", "rocket", "streetcar", "tank", "tractor"),
}
COARSE_NAMES = tuple(SUPERCLASS_MEMBERS)  # label order, as the official meta file lists them
FINE_NAMES = tuple(sorted(name for members in SUPERCLASS_MEMBERS.values() for name in members))
SUPERCLASS_OF = tuple(next(i for i, members in enumerate(SUPERCLASS_MEMBERS.values()) if fine in members)
                      for fine in FINE_NAMES)
FOLDER = "cifar-100-python"


def write_cifar100_folder(root: Path, n_train: int = 1000, n_test: int = 300, seed: int = 0) -> Path:
    """Write root/cifar-100-python/{train,test,meta}: n_train and n_test images, classes in turn."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    superclass_of = np.asarray(SUPERCLASS_OF)

    def dump(name: str, labels: np.ndarray, batch_label: str) -> None:
        batch = {b"filenames": [f"{FINE_NAMES[c]}_s_{i:06d}.png".encode() for i, c in enumerate(labels)],
                 b"batch_label": batch_label.encode(), b"fine_labels": labels.tolist(),
                 b"coarse_labels": superclass_of[labels].tolist(),
                 b"data": synthetic_images(labels, rng, len(FINE_NAMES))}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)

    train_labels = np.arange(n_train) % len(FINE_NAMES)
    rng.shuffle(train_labels)
    dump("train", train_labels, "training batch 1 of 1")
    dump("test", np.arange(n_test) % len(FINE_NAMES), "testing batch 1 of 1")
    with open(folder / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [n.encode() for n in FINE_NAMES],
                     b"coarse_label_names": [n.encode() for n in COARSE_NAMES]}, f, protocol=2)
    return Path(root)
