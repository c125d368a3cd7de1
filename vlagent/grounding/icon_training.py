"""`vlagent train-icons`: train the icon recognizer (icon_recognizer.py) on synthetic screens.

    vlagent train-icons --out icons.safetensors [--synthetic-seed 1 --screens 3000] [--epochs 12 --seed 0]

Examples come from the train split of a synthetic set (the same screens `grounding-data harvest --source
synthetic --seed S --count N` writes, split per screen as it does: synthetic.screen_split), drawn again
from their seed so every element's icon is known, not only the targets':

- every blob icon_finder.screen_blobs finds on the screen (text too), seen as icon_recognizer sees it;
- a blob whose centre lies in an icon element and whose larger side is at least PART of the element's
  smaller side is that icon; smaller blobs inside an icon (an eye's pupil) are left out;
- every other blob is "none": text (a share of it, TEXT_SHARE), checkboxes, field borders, separators.

A screen's size in text heights comes from the generator's own text boxes, as it would from OCR. The
classes are the icons the generator draws (synth_icons.ICONS) that showed at least MIN_EXAMPLES times;
their meanings, plus icon_finder's extra words for theme icons, are written beside the weights.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from vlagent.grounding.icon_recognizer import NONE, IconNet, IconRecognizer, blob_picture, blob_shape

PART = 0.3  # a blob this share of its icon element's smaller side, or larger, shows the icon
TEXT_SHARE = 0.3  # share of text blobs kept as "none" examples
MIN_EXAMPLES = 8  # an icon seen fewer times is left out of the classes


def synthetic_examples(seed: int, screens: int, progress: Callable[[int, int], Any] | None = None
                       ) -> tuple[np.ndarray, np.ndarray, list[str]]:  # fmt: skip
    """(pictures N x SIDE x SIDE, shapes N x 2, labels: icon name or NONE) from the train-split screens
    among the first `screens` of synthetic set `seed`."""
    from vlagent.grounding.controls import text_height
    from vlagent.grounding.icon_finder import screen_blobs
    from vlagent.grounding.synthetic import _text_lines, make_screen, screen_split

    rng = random.Random(f"vlagent-icon-examples:{seed}")
    pictures, shapes, labels = [], [], []
    for index in range(screens):
        if progress:
            progress(index, screens)
        if screen_split(seed, index) != "train":
            continue
        screen = make_screen(seed, index)
        width, height = screen.image.size
        unit = text_height(_text_lines(screen), screen.image.size)
        rgb = np.asarray(screen.image.convert("RGB"))
        icons = [e for e in screen.elements if e.icon]
        texts = [box for _, box in screen.texts]
        for box in screen_blobs(screen.image, unit):
            label = _label(box, icons, texts, rng)
            if label is None:
                continue
            pictures.append(blob_picture(rgb, box))
            shapes.append(blob_shape(box, unit))
            labels.append(label)
    return np.stack(pictures), np.array(shapes, dtype=np.float32), labels


def _label(box: tuple[int, int, int, int], icons: list, texts: list, rng: random.Random) -> str | None:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    for element in icons:
        x0, y0, x1, y1 = element.box
        if x0 <= cx <= x1 and y0 <= cy <= y1:
            big_enough = max(box[2] - box[0], box[3] - box[1]) >= PART * min(x1 - x0, y1 - y0)
            return element.icon if big_enough else None
    if any(x0 <= cx <= x1 and y0 <= cy <= y1 for x0, y0, x1, y1 in texts):
        return NONE if rng.random() < TEXT_SHARE else None
    return NONE


def vocabulary(names: list[str]) -> dict[str, tuple[str, ...]]:
    """What people call each icon: the generator's words (the icon sheets' for their own icons), for theme
    icons icon_finder's too, and the sheets' other words for the generator's icons."""
    from vlagent.grounding.icon_finder import ICON_WORDS
    from vlagent.grounding.icon_sheets import EXTRA_MEANINGS, SHEET_ICONS
    from vlagent.grounding.synth_icons import ICONS

    def words(name: str) -> tuple[str, ...]:
        own = SHEET_ICONS[name][1] if name in SHEET_ICONS else ICONS[name][1]
        return tuple(dict.fromkeys(own + ICON_WORDS.get(name, ()) + EXTRA_MEANINGS.get(name, ())))

    return {name: words(name) for name in names}


def train_recognizer(pictures: np.ndarray, shapes: np.ndarray, labels: list[str], *, epochs: int = 12,
                     seed: int = 0, batch: int = 256, lr: float = 2e-3, width: int = 32,
                     log: Callable[[str], Any] = print) -> IconRecognizer:  # fmt: skip
    """An IconRecognizer trained on the examples (AdamW, cosine; each icon's examples weighted up to the
    median class's count so rare icons are learnt; a random tenth held out to report accuracy)."""
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    classes = [NONE] + sorted(n for n, c in counts.items() if n != NONE and c >= MIN_EXAMPLES)
    index = {name: i for i, name in enumerate(classes)}
    keep = np.array([label in index for label in labels])
    x, s = torch.from_numpy(pictures[keep]), torch.from_numpy(shapes[keep])
    y = torch.tensor([index[label] for label in labels if label in index])
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    order = torch.randperm(len(y), generator=generator)
    held, fit = order[: len(y) // 10], order[len(y) // 10:]
    per_class = torch.bincount(y[fit], minlength=len(classes)).float().clamp(min=1)
    median = per_class[1:].median()
    weights = (median / per_class).clamp(min=1.0, max=20.0)  # rare icons count more, "none" never less
    weights[0] = 1.0
    net = IconNet(len(classes), width)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(fit) + batch - 1) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.05)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=0.05)
    for epoch in range(epochs):
        net.train()
        total = 0.0
        shuffled = fit[torch.randperm(len(fit), generator=generator)]
        for start in range(0, len(shuffled), batch):
            rows = shuffled[start:start + batch]
            pics = _augmented(x[rows], generator)
            loss = loss_fn(net(pics, s[rows]), y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(rows)
        net.eval()
        with torch.no_grad():
            predicted = net(x[held], s[held]).argmax(dim=1)
        icons = y[held] != 0
        log(f"epoch {epoch + 1}/{epochs}: loss {total / len(fit):.3f}, held-out accuracy "
            f"{float((predicted == y[held]).float().mean()):.1%} (icons {float((predicted[icons] == y[held][icons]).float().mean()):.1%}, "
            f"none called an icon {float((predicted[~icons] != 0).float().mean()):.1%})")
    return IconRecognizer(net, classes, vocabulary(classes[1:]))


def _augmented(pictures: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Pictures shifted by up to a pixel and dimmed or sharpened a little: how the same icon looks framed
    and antialiased differently."""
    shift = torch.randint(-1, 2, (2,), generator=generator).tolist()
    out = torch.roll(pictures, shifts=shift, dims=(1, 2))
    gain = 0.75 + 0.5 * torch.rand(len(pictures), 1, 1, generator=generator)
    return (out * gain).clamp(0, 1)


def cmd_train_icons(args: argparse.Namespace) -> int:
    if args.screens < 1 or args.epochs < 1 or args.sheets < 0:
        print("error: --screens and --epochs must be at least 1, --sheets 0 or more", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()

    def progress(i: int, n: int) -> None:
        if i % 200 == 0:
            print(f"screens {i}/{n} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)

    pictures, shapes, labels = synthetic_examples(args.synthetic_seed, args.screens, progress)
    if args.sheets > 0:
        from vlagent.grounding.icon_sheets import sheet_examples

        more = sheet_examples(args.sheet_seed, args.sheets, progress)
        pictures, shapes = np.concatenate([pictures, more[0]]), np.concatenate([shapes, more[1]])
        labels = labels + more[2]
    icons = sum(label != NONE for label in labels)
    print(f"{len(labels)} examples ({icons} icons) in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    recognizer = train_recognizer(pictures, shapes, labels, epochs=args.epochs, seed=args.seed,
                                  log=lambda m: print(m, file=sys.stderr))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    recognizer.save(args.out)
    print(f"wrote {args.out}: {len(recognizer.classes) - 1} icons, {time.perf_counter() - t0:.0f} s in all")
    return 0


__all__ = ["cmd_train_icons", "synthetic_examples", "train_recognizer", "vocabulary"]
