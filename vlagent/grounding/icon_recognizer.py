"""Naming icon-sized blobs with a small learned classifier: "the heart icon", "the calendar icon".

The theme search (icon_finder) knows the icons of the installed desktop theme by their exact pictures.
Applications draw many icons of their own: a gear, a bell, a heart, drawn in any colour, at any size.
For those, a small convolutional network looks at each icon-sized blob of the screenshot (the same
blobs icon_finder.screen_blobs finds) and says which icon it is, or none:

- the blob is seen as its contrast with its background (colour and light/dark theme do not matter),
  scaled to SIDE x SIDE with its aspect kept, plus its size in text heights and its aspect;
- the classes are the icons of the recognizer's vocabulary (written beside its weights: each class's
  name and the words people call it), class 0 being "not an icon of the vocabulary";
- the instruction's words pick the classes it names ("the settings icon": gear); the blobs whose
  probability for those classes is at least MIN_PROBABILITY are the answer, most probable first.

The weights (a few hundred kilobytes) are trained by `vlagent train-icons` (icon_training.py) on the
train split of the synthetic screens and ship beside the default grounder. Coordinates out are
normalized to the image (DESIGN.md).
"""
from __future__ import annotations

import json
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from vlagent.grounding.icon_finder import IconMatch, named_icons, screen_blobs

SIDE = 24  # px: a blob is classified at this size
NONE = "none"  # class 0: a blob that is no icon of the vocabulary
MIN_PROBABILITY = 0.5  # a blob answers an instruction when the classes it names reach this together
MAX_ANSWERS = 8  # most probable blobs kept (an icon shown in every row of a list)
SCREENS_CACHED = 4  # screens whose blobs' probabilities are kept


def blob_picture(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The blob `box` (pixels, x1 y1 exclusive) of an RGB array as SIDE x SIDE float32 in 0..1: each pixel's
    largest channel distance from the background (the median of the box's border), divided by the
    largest, the blob centred on a square with its aspect kept."""
    x0, y0, x1, y1 = box
    crop = rgb[y0:y1, x0:x1].astype(np.float32)
    ring = np.concatenate([crop[0], crop[-1], crop[:, 0], crop[:, -1]])
    contrast = np.abs(crop - np.median(ring, axis=0)).max(axis=2)
    contrast /= max(float(contrast.max()), 1.0)
    h, w = contrast.shape
    side = max(h, w)
    square = np.zeros((side, side), dtype=np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    square[top:top + h, left:left + w] = contrast
    picture = Image.fromarray((square * 255).astype(np.uint8)).resize((SIDE, SIDE), Image.BILINEAR)
    return np.asarray(picture, dtype=np.float32) / 255


def blob_shape(box: tuple[int, int, int, int], unit: float) -> tuple[float, float]:
    """The two numbers the classifier reads beside the picture: log of the blob's larger side in text
    heights, log of its aspect (width / height)."""
    w, h = box[2] - box[0], box[3] - box[1]
    return float(np.log(max(w, h) / max(unit, 1.0))), float(np.log(w / h))


class IconNet(nn.Module):
    """SIDE x SIDE contrast picture + 2 shape numbers -> class logits (class 0: none)."""

    def __init__(self, classes: int, width: int = 32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, stride=2), nn.ReLU(),  # 12 x 12
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1, stride=2), nn.ReLU(),  # 6 x 6
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Linear(2 * width * 9 + 2, 128), nn.ReLU(), nn.Linear(128, classes))

    def forward(self, pictures: torch.Tensor, shapes: torch.Tensor) -> torch.Tensor:
        x = self.features(pictures[:, None])  # B x C x 6 x 6
        x = nn.functional.adaptive_avg_pool2d(x, 3).flatten(1)  # keeps where strokes are, coarsely
        return self.head(torch.cat([x, shapes], dim=1))


class IconRecognizer:
    """A trained IconNet and its vocabulary: `classes[i]` is class i's icon name, `meanings[name]` the words
    an instruction uses for it."""

    def __init__(self, net: IconNet, classes: Sequence[str], meanings: Mapping[str, Sequence[str]]):
        if not classes or classes[0] != NONE:
            raise ValueError(f"an icon recognizer's class 0 must be {NONE!r}, got {list(classes[:1])}")
        self.net = net.eval()
        self.classes = tuple(classes)
        self.meanings = {name: tuple(words) for name, words in meanings.items()}
        # screen content -> its blobs and their probabilities: the same whatever icon is asked for next
        self._screens: OrderedDict[int, tuple[list, np.ndarray]] = OrderedDict()

    @staticmethod
    def load(path: str | Path) -> "IconRecognizer":
        from safetensors import safe_open
        from safetensors.torch import load_file

        path = Path(path)
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if "classes" not in meta or "meanings" not in meta:
            raise ValueError(f"{path}: not an icon recognizer (no 'classes'/'meanings' metadata)")
        classes, meanings = json.loads(meta["classes"]), json.loads(meta["meanings"])
        net = IconNet(len(classes), int(meta.get("width", 32)))
        net.load_state_dict(load_file(str(path)))
        return IconRecognizer(net, classes, meanings)

    def save(self, path: str | Path) -> None:
        from safetensors.torch import save_file

        meta = {"classes": json.dumps(self.classes), "meanings": json.dumps(self.meanings),
                "width": str(self.net.features[0].out_channels)}
        save_file({k: v.contiguous() for k, v in self.net.state_dict().items()}, str(path), metadata=meta)

    def named_classes(self, instruction: str) -> tuple[int, ...]:
        """The classes whose words the instruction uses ("the settings icon" -> gear), the longest words
        first (icon_finder.named_icons); () when it names none."""
        names = set(named_icons(instruction, self.meanings))
        return tuple(i for i, name in enumerate(self.classes) if name in names)

    def _blobs(self, image: Image.Image, unit: float) -> tuple[list, np.ndarray]:
        """The screen's icon-sized blobs (icon_finder.screen_blobs, kept per screen) and their probabilities,
        computed once per blob list: the list held here keeps its id from being reused."""
        boxes = screen_blobs(image, unit)
        cached = self._screens.get(id(boxes))
        if cached is None or cached[0] is not boxes:
            cached = self._screens[id(boxes)] = (boxes, self.probabilities(image, boxes, unit))
            while len(self._screens) > SCREENS_CACHED:
                self._screens.popitem(last=False)
        self._screens.move_to_end(id(boxes))
        return cached

    @torch.no_grad()
    def probabilities(self, image: Image.Image, boxes: Sequence[tuple[int, int, int, int]], unit: float
                      ) -> np.ndarray:  # fmt: skip
        """len(boxes) x classes: each blob's probability of being each icon (column 0: none)."""
        if not boxes:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        rgb = np.asarray(image.convert("RGB"))
        pictures = torch.from_numpy(np.stack([blob_picture(rgb, b) for b in boxes]))
        shapes = torch.tensor([blob_shape(b, unit) for b in boxes], dtype=torch.float32)
        return torch.softmax(self.net(pictures, shapes), dim=1).numpy()

    def find(self, image: Image.Image, instruction: str, unit: float) -> list[IconMatch]:
        """The blobs showing the icon the instruction names, most probable first (at most MAX_ANSWERS, each
        at least MIN_PROBABILITY); empty when it names no icon of the vocabulary or none shows. Every
        icon-sized blob is asked, text too: OCR reads a row of icons as a word ("M日×Q"), and the network
        learnt text as "none"."""
        wanted = self.named_classes(instruction)
        if not wanted:
            return []
        boxes, probabilities = self._blobs(image, unit)
        if not len(boxes):
            return []
        score = probabilities[:, list(wanted)].sum(axis=1)
        width, height = image.size
        found = []
        for i in np.argsort(-score)[:MAX_ANSWERS]:
            if score[i] < MIN_PROBABILITY:
                break
            x0, y0, x1, y1 = boxes[i]
            best = max(wanted, key=lambda c: probabilities[i, c])
            found.append(IconMatch(self.classes[best], (x0 / width, y0 / height, x1 / width, y1 / height),
                                   float(score[i])))
        return _apart(found)


def _apart(matches: list[IconMatch]) -> list[IconMatch]:
    """Matches less those whose centre lies inside a more probable one's box: an icon button's outline and
    the glyph inside it are one place."""
    kept: list[IconMatch] = []
    for m in matches:
        x, y = m.point
        if not any(k.box[0] <= x <= k.box[2] and k.box[1] <= y <= k.box[3] for k in kept):
            kept.append(m)
    return kept


@lru_cache(maxsize=4)
def load_recognizer(path: str) -> IconRecognizer | None:
    """The recognizer at `path`, read once; None where there is no such file."""
    return IconRecognizer.load(path) if Path(path).is_file() else None


__all__ = ["IconNet", "IconRecognizer", "MIN_PROBABILITY", "NONE", "SIDE", "blob_picture", "blob_shape",
           "load_recognizer"]
