"""The small grounder (model/grounder.py + vlagent/grounding/train.py): layout, OCR noise, training that
learns, checkpoints that resume, and the trained folder running on the engine exactly as it trained."""
from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from vlagent.grounding.dataset import GroundingRecord, OcrLine, read_dataset, write_dataset
from vlagent.grounding.train import ScreenSampler, TrainableGrounder, TrainConfig, group_screens, noisy_lines, save_grounder, train
from vlagent.model.grounding_head import grounding_loss
from vlagent.model.grounder import (
    RELATION_MAPS,
    IMAGE,
    LINE,
    AnchorEncoder,
    GrounderSpec,
    LineEncoder,
    TextLine,
    build_layout,
    exact_queries,
    exact_text,
    line_similarity,
    load_grounder,
    pixel_input,
    instruction_query,
    names_text_only,
    span_box,
    written_like,
    written_places,
)

SPEC = GrounderSpec(image_size=(128, 192), max_lines=16)
WORDS = ["Save", "Open", "Delete", "Print", "Search", "Close", "Help", "Share", "Undo", "Send"]


def _screens(folder, count: int, seed: int) -> list[GroundingRecord]:
    """Screens with four labelled buttons each at random places; OCR lines cached exactly."""
    rng = random.Random(seed)
    records = []
    (folder / "img").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image = Image.new("RGB", (384, 256), "white")
        draw = ImageDraw.Draw(image)
        labels = rng.sample(WORDS, 4)
        placed, lines = [], []
        for label in labels:
            while True:
                x, y = rng.randrange(10, 300), rng.randrange(10, 220)
                if all(abs(x - a) > 80 or abs(y - b) > 30 for a, b in placed):
                    break
            placed.append((x, y))
            draw.rectangle([x, y, x + 64, y + 24], outline="black", fill="#dde")
            draw.text((x + 8, y + 6), label, fill="black")
            box = (x / 384, y / 256, (x + 64) / 384, (y + 24) / 256)
            lines.append(OcrLine(label, box))
        name = f"img/{seed}_{i}.png"
        image.save(folder / name)
        for label, line in zip(labels, lines):
            records.append(GroundingRecord(image=name, instruction=f"the {label} button", box=line.box,
                                           platform="desktop", element="button", source="test:buttons",
                                           split="train", ocr=lines))
    write_dataset(folder / "data.jsonl", records)
    return read_dataset(folder / "data.jsonl")


def test_layout_places_lines_on_the_image_grid():
    lines = [TextLine("Save", (0.0, 0.0, 0.2, 0.1)), TextLine("Open", (0.8, 0.9, 1.0, 1.0)), TextLine("  ", (0, 0, 1, 1))]
    lay = build_layout("the Save button", lines, SPEC)
    rows, cols = SPEC.grid
    assert (lay.input_ids == IMAGE).sum() == rows * cols and (lay.input_ids == LINE).sum() == 2  # blank line dropped
    assert lay.action_index == len(lay.input_ids) - 1
    start = lay.position_ids[0, lay.image_slots[0]]
    first, last = lay.position_ids[:, lay.line_slots[0]], lay.position_ids[:, lay.line_slots[1]]
    assert first.tolist() == [start, start, start] and last.tolist() == [start, start + rows - 1, start + cols - 1]
    assert lay.position_ids[0, -1] > lay.position_ids[:, :-1].max()  # <action> after everything
    exact = line_similarity("click the 'Save' button", "Save")
    assert exact[1] == 1.0 and exact[4] == 1.0 and line_similarity("x", "")[0] == 0.0
    run_together = line_similarity("click Sign in", "SigninRegister")
    assert run_together[5] == 1.0 and run_together[4] == 0.0  # the query sits inside a run-together OCR line
    assert line_similarity("the Save button", "Open")[1] < 0.5
    from vlagent.model.grounder import instruction_query

    assert instruction_query("the Open button") == "open" and instruction_query("open the File menu") == "file"
    assert instruction_query("click Select all") == "select all"


@pytest.mark.parametrize("instruction, query", [
    ("click the Sign in button", "sign in"),
    ("the input for Name", "name"),
    ("click in the Name field", "name"),
    ("Latin in the list", "latin"),
    ("the toolbar's New icon", "new"),
    ("the field under Postal code", "postal code"),
    ("type hello into the Email field", "email"),
    ("type 'Grüße' into the 'Name' field", "Name"),
    ("the Text to copy field", "text to copy"),
    ("the text box below Country", "country"),
    ("click Next", "next"),
    ("open the Settings app", "settings"),  # "app" names the kind of target where it ends the instruction
    ("App info", "app info"),
    ("the Application menu", "application"),
    ("click Next Character in the menu", "next character"),  # "next" is a relation only before "to"
    ("the field next to Name", "name"),
    ("the checkbox left of Remember me", "remember me"),
    ("the Left Align icon", "left align"),
    ("click Save in this dialog", "save"),
    ("the circle next to Small", "small"),  # the toggle's shape is no label
    ("the square left of Bold", "bold"),
    ("click Circle", "circle"),
    ("turn off Dark mode", "dark mode"),
    ("switch off Bluetooth", "bluetooth"),
    ("the Turn off button", "turn off"),
    ("type Москва into the field under 电话", "电话"),
    ("New in the File menu", "new"),  # the menu an item is in is where it is, not its name
    ("Вставить in the Сервис menu", "вставить"),
    ("Save As in the Open Recent menu", "save as"),
    ("click Save in the menu bar", "save"),
    ("open the File menu", "file"),
    # a kind of thing chosen from a named list: the list is the target (its options are not shown yet)
    ("choose a language from the Language dropdown list", "language"),
    ("please pick your country from the Country drop-down", "country"),
    ("set the Theme drop-down to Dark", "theme"),
    ("change the Size combo box to Large", "size"),
    ("select English from the menu", "english"),  # a named option is the target itself
    ("set Dark mode", "set dark mode"),
])
def test_instruction_query_keeps_what_is_written_on_screen(instruction, query):
    assert instruction_query(instruction) == query


def test_span_box_points_at_the_words_the_instruction_names():
    line = TextLine("Prev Up Next", (0.1, 0.1, 0.4, 0.2))
    x0, y0, x1, y1 = span_box("click the Next link", line)
    assert 0.3 <= x0 < x1 <= 0.4 and (y0, y1) == (0.1, 0.2)  # the last of 12 characters' third
    assert span_box("the Save button", TextLine("Save", (0.1, 0.1, 0.4, 0.2))) == (0.1, 0.1, 0.4, 0.2)
    assert span_box("open Home", TextLine("Home>Users", (0.0, 0.0, 0.5, 0.1)))[2] < 0.25  # OCR ran them together
    whole = TextLine("Save all files", (0.0, 0.0, 0.6, 0.1))
    assert span_box("the Save all files button", whole) == whole.box  # the whole line matches best


def test_the_anchor_map_starts_as_a_no_op_and_follows_the_best_matching_line():
    lines = [TextLine("Name", (0.1, 0.1, 0.2, 0.15)), TextLine("Email", (0.1, 0.6, 0.2, 0.65))]
    lay = build_layout("the Name field", lines, SPEC)
    encoder, anchors = LineEncoder(32), AnchorEncoder(32)
    vectors, maps = anchors(encoder.match(lay.line_features), lay.line_boxes, lay.grid)
    assert vectors.shape == (lay.grid[0] * lay.grid[1], 32) and not vectors.any()
    assert maps.any()  # relation maps start small and random: the head's zero mixing weights can then learn
    assert encoder.match(lay.line_features).argmax() == 0  # the hand-made start already prefers "Name"
    torch.nn.init.normal_(anchors.mlp[2].weight)
    swapped = build_layout("the Email field", lines, SPEC)
    a, _ = anchors(encoder.match(lay.line_features), lay.line_boxes, lay.grid)
    b, _ = anchors(encoder.match(swapped.line_features), swapped.line_boxes, swapped.grid)
    assert not torch.allclose(a, b)  # another label, another map


def test_every_part_of_the_pointer_prior_learns_from_the_first_step():
    # The relation maps and their per-instruction mixing weights once both started at zero: a product of
    # two zeros has no gradient, and a 5,000-step run ended with the maps still exactly zero.
    model = TrainableGrounder(TrainConfig(hidden_size=32, layers=2, vision_hidden=32, vision_depth=1, proj_dim=16,
                                          byte_dim=16, spec=SPEC))
    image = Image.new("RGB", (192, 128), "white")
    lines = [TextLine("Name", (0.1, 0.1, 0.25, 0.2)), TextLine("Email", (0.1, 0.5, 0.25, 0.6))]
    target = [torch.tensor([0.3, 0.1, 0.6, 0.2]), torch.tensor([0.3, 0.5, 0.6, 0.6])]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def step() -> None:
        optimizer.zero_grad()
        logits, candidates = model.forward_batch(model.screen_features(image), ["the Name field", "the Email field"],
                                                 lines)
        grounding_loss(logits, target, candidates)[0].backward()

    step()
    assert model.head.prior_mix.weight.grad[1:].abs().sum(1).gt(0).all()  # every map's mixing weight moves
    optimizer.step()
    step()  # ...and once they are not zero, the maps themselves learn
    assert model.anchors.mlp[2].weight.grad[-RELATION_MAPS:].abs().sum(1).gt(0).all()


def test_a_dense_screen_keeps_the_lines_the_instruction_names_not_the_first_ones_read():
    lines = [TextLine(f"Row {i:03d} glyph", (0.0, i / 100, 0.1, (i + 1) / 100)) for i in range(100)]
    lines.append(TextLine("Malayalam", (0.0, 0.995, 0.1, 1.0)))  # read last, below everything
    layout = build_layout("the list item Malayalam", lines, SPEC)
    kept = [ln.text for ln in layout.lines]
    assert len(kept) == SPEC.max_lines and "Malayalam" in kept
    order = [lines.index(ln) for ln in layout.lines]
    assert order == sorted(order)  # still in screen order
    few = lines[:5]
    assert build_layout("the list item Malayalam", few, SPEC).lines == few


def test_a_label_cut_short_with_an_ellipsis_matches_the_name_it_starts():
    cut, other = line_similarity("the list item Malayalam", "Malayal..."), line_similarity("the list item Malayalam", "Mandaic")
    assert cut[4] == 1.0 and cut[1] == 1.0 and other[4] == 0.0  # exact, as far as the label shows
    assert line_similarity("select 'Masaram Gondi'", "M asara…")[4] == 1.0  # OCR split a word too
    assert line_similarity("the Maths item", "Malayal...")[4] == 0.0


def test_screens_are_drawn_per_source_kind_by_the_square_root_of_their_count():
    def records(source, n):
        return [GroundingRecord(image=f"{source}-{i}.png", instruction="x", box=(0, 0, 1, 1), platform="desktop",
                                element="button", source=source, split="train", base_dir=Path("/data"))
                for i in range(n)]
    sampler = ScreenSampler(group_screens(records("synthetic:web", 900) + records("gtk:app", 100)))
    rng = random.Random(0)
    drawn = [sampler.draw(rng).records[0].source for _ in range(4000)]
    share = drawn.count("gtk:app") / len(drawn)
    assert 0.2 < share < 0.3  # sqrt(100) / (sqrt(900) + sqrt(100)) = 0.25, not 0.1


def test_portrait_screens_get_a_transposed_input():
    assert SPEC.input_size(1280, 720) == (128, 192) and SPEC.input_size(412, 860) == (192, 128)
    assert SPEC.grid_for(412, 860) == (6, 4) and SPEC.grid_for(1920, 1080) == (4, 6)
    pv, grid = pixel_input(Image.new("RGB", (412, 860)), SPEC)
    assert grid[0].tolist() == [1, 12, 8] and pv.shape[0] == 96
    lay = build_layout("x", [TextLine("a", (0.9, 0.9, 1.0, 1.0))], SPEC, SPEC.grid_for(412, 860))
    assert lay.grid == (6, 4) and (lay.input_ids == IMAGE).sum() == 24


def test_pixel_input_matches_the_engines_patch_order():
    from vlagent.model.processor import PixelConfig, patchify

    image = Image.effect_noise((192, 128), 60).convert("RGB")
    pv, grid = pixel_input(image, SPEC)
    x = torch.from_numpy(__import__("numpy").asarray(image, dtype="float32")).permute(2, 0, 1) / 127.5 - 1
    want, g = patchify(x[None].expand(2, -1, -1, -1), PixelConfig(min_pixels=1, max_pixels=10**8))
    assert tuple(grid[0].tolist()) == g and torch.allclose(pv, want)


def test_ocr_noise_keeps_boxes_valid_and_changes_text():
    rng = random.Random(0)
    lines = [TextLine(w, (0.1 * i, 0.5, 0.1 * i + 0.08, 0.55)) for i, w in enumerate(["Solo", "Bill", "OK", "Io"])]
    seen_change = False
    for _ in range(50):
        out = noisy_lines(lines, rng)
        for ln in out:
            x0, y0, x1, y1 = ln.box
            assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
        seen_change |= [ln.text for ln in out] != [ln.text for ln in lines]
    assert seen_change
    assert noisy_lines(lines, rng, strength=0) == lines


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("grounder")
    train_records = _screens(folder / "train", 12, seed=1)
    cfg = TrainConfig(steps=70, screens_per_step=2, instructions_per_screen=4, lr=4e-3, warmup=10, negatives=0.0,
                      ocr_noise=0.0, hidden_size=64, layers=2, vision_hidden=48, vision_depth=1, proj_dim=32,
                      byte_dim=32, spec=SPEC, checkpoint_every=35, eval_every=35, seed=0)
    logs = []
    out = train(train_records, train_records[:16], folder / "model", cfg, progress=lambda s, info: logs.append(info))
    return out, train_records, logs, cfg


def test_training_learns_and_writes_a_grounder_folder(trained):
    out, records, logs, _ = trained
    assert logs[-1]["step"] == 70 and (out / "checkpoint.pt").exists() and (out / "grounder.safetensors").exists()
    first = sum(x["loss"] for x in logs[:5]) / 5
    last = sum(x["loss"] for x in logs[-5:]) / 5
    assert last < 0.7 * first, (first, last)
    assert logs[-1]["val_accuracy"] >= 0.6  # by name, on screens it trained on: the lines carry the answer


def test_training_calibrates_the_not_found_threshold_on_validation_screens(trained, tmp_path):
    import json
    import shutil

    from safetensors import safe_open

    from vlagent.grounding.calibrate import (
        CANDIDATE_MATCH_BOOSTS, CANDIDATE_NONE_RATIOS, CANDIDATE_THRESHOLDS, Calibration, calibrate_threshold, write_threshold)
    from vlagent.grounding.grounders.head import HeadGrounder

    out, records, _, _ = trained
    with safe_open(str(out / "grounder.safetensors"), framework="pt") as f:
        meta = json.loads(f.metadata()["vlagent_grounder"])
    cal = meta["info"]["calibration"]
    assert meta["threshold"] in CANDIDATE_THRESHOLDS and cal["targets"] == 16 and cal["negatives"] > 0
    assert meta["none_ratio"] in CANDIDATE_NONE_RATIOS and load_grounder(out).none_ratio == meta["none_ratio"]
    assert meta["match_boost"] in CANDIDATE_MATCH_BOOSTS and load_grounder(out).match_boost == meta["match_boost"]
    assert 0 <= cal["accuracy"] <= 1
    assert cal["refused"] <= 1 - cal["accuracy"] + 1e-9  # a refused target is never a hit
    assert load_grounder(out).threshold == meta["threshold"] == HeadGrounder(out).threshold
    assert HeadGrounder(out, threshold=0.9).threshold == 0.9  # an explicit one wins
    again = calibrate_threshold(load_grounder(out), records[:16])
    assert (again.threshold, again.none_ratio) == (meta["threshold"], meta["none_ratio"])  # deterministic
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    write_threshold(copy, Calibration(0.55, 1, 0.0, 1, 1.0, none_ratio=0.25, match_boost=2.0))
    boosted = load_grounder(copy)
    assert (boosted.threshold, boosted.none_ratio, boosted.match_boost) == (0.55, 0.25, 2.0)
    screen = Image.open(records[0].image_path).convert("RGB")
    lines = [TextLine(ln.text, tuple(ln.box)) for ln in records[0].ocr]
    plain, _, match = boosted.head_logits(screen, records[0].instruction, lines)
    boosted_out, _ = boosted.logits(screen, records[0].instruction, lines)
    assert torch.allclose(boosted_out.pointer[0, :-1], plain.pointer[0, :-1] + 2.0 * match) and match.abs().sum() > 0
    with pytest.raises(ValueError, match="cached OCR"):
        calibrate_threshold(load_grounder(out), [dataclasses.replace(records[0], ocr=None)])


def test_the_rule_gives_up_a_little_accuracy_in_refusals_to_reject_more_negatives():
    from vlagent.grounding.calibrate import Answer, choose_rule

    # 100 targets: 80 confident hits, 10 hits at mass 0.25, 10 misses at mass 0.15 (refusing them costs nothing)
    targets = [Answer(0.9, 0.05, True)] * 80 + [Answer(0.25, 0.1, True)] * 10 + [Answer(0.15, 0.1, False)] * 10
    negatives = [Answer(0.2, 0.3, False)] * 50 + [Answer(0.12, 0.05, False)] * 50
    t, k, _ = choose_rule(targets, negatives, accuracy_slack=0.0)
    assert t == 0.25 and k == 1.0  # every hit kept; refuses all the misses and every negative
    t, k, _ = choose_rule(targets, negatives[:50] + [Answer(0.3, 0.05, False)] * 50, accuracy_slack=0.0)
    assert (t, k) == (0.25, 1.0)  # the confident negatives cannot be rejected without losing hits
    t, k, _ = choose_rule(targets, negatives[:50] + [Answer(0.3, 0.05, False)] * 50, accuracy_slack=0.10)
    assert t > 0.3  # ten hits (0.10) may go: now those negatives are rejected too


def test_the_rule_does_not_trade_more_hits_than_negatives_it_gains():
    from vlagent.grounding.calibrate import Answer, choose_rule

    targets = [Answer(0.9, 0.01, True)] * 84 + [Answer(0.45, 0.01, True)] * 2 + [Answer(0.1, 0.01, False)] * 14
    negatives = [Answer(0.2, 0.01, False)] * 99 + [Answer(0.47, 0.01, False)]
    # within the slack, 0.50 would also reject the last negative, at the cost of two hits
    assert choose_rule(targets, negatives, accuracy_slack=0.03)[:2] == (0.45, 1.0)


def test_instructions_whose_words_are_nowhere_on_screen_get_a_threshold_of_their_own():
    from vlagent.grounding.calibrate import Answer, choose_rule
    from vlagent.model.grounder import names_screen_text

    lines = [TextLine("Save as…", (0.1, 0.1, 0.2, 0.15)), TextLine("Remember me", (0.1, 0.2, 0.3, 0.25))]
    assert names_screen_text("the 'Save as' button", lines) and names_screen_text("tick remember", lines)
    assert not names_screen_text("the Purple Elephant button", lines)
    assert not names_screen_text("the search icon", lines)  # an icon: its name is not written
    # named targets are hit at 0.3; unnamed ones (icons) at 0.7 or more; negatives (all unnamed) reach 0.5
    targets = [Answer(0.3, 0.01, True)] * 80 + [Answer(0.7, 0.01, True, named=False)] * 20
    negatives = [Answer(0.5, 0.01, False, named=False)] * 100
    threshold, _, unnamed = choose_rule(targets, negatives, accuracy_slack=0.0)
    assert threshold <= 0.3 and 0.5 < unnamed <= 0.7  # every target kept, every negative refused


def test_calibration_uses_real_screens_when_there_are_enough():
    from vlagent.grounding.calibrate import MIN_REAL_TARGETS, calibration_records

    def record(source: str, ocr: bool = True) -> GroundingRecord:
        return GroundingRecord(image="x.png", instruction="x", box=(0, 0, 1, 1), platform="desktop",
                               element="button", source=source, split="val",
                               ocr=[OcrLine("x", (0, 0, 1, 1))] if ocr else None)

    generated = [record("synthetic:desktop") for _ in range(50)]
    few_real = [record("gtk:file-chooser") for _ in range(MIN_REAL_TARGETS - 1)] + [record("web:doc", ocr=False)]
    assert len(calibration_records(generated + few_real)) == 50 + MIN_REAL_TARGETS - 1  # too few: all with text
    real = few_real + [record("web:doc-libxslt")]
    assert [r.source for r in calibration_records(generated + real)] == [r.source for r in real if r.ocr]


def test_the_engine_runs_the_trained_folder_as_it_trained(trained):
    out, records, _, _ = trained
    grounder = load_grounder(out)
    reference = TrainableGrounder(trained[3])
    state = torch.load(out / "checkpoint.pt", weights_only=False)["model"]
    reference.load_state_dict(state)
    reference.eval()
    record = records[0]
    lines = [TextLine(ln.text, ln.box) for ln in record.ocr]
    with Image.open(record.image_path) as im:
        image = im.convert("RGB")
    # a phone-shaped screen; and a long instruction: a sequence longer than the hidden size (64)
    long = "please click the button that says " + record.instruction + " near the top of the window, once"
    for screen, grid, text in ((image, (4, 6), record.instruction), (image.resize((160, 320)), (6, 4), record.instruction),
                               (image, (4, 6), long)):
        with torch.no_grad():
            want, want_cands = reference.forward_one(reference.screen_features(screen), text, lines)
        got, cands = grounder.logits(screen, text, lines)
        assert cands.num_patches == grid[0] * grid[1] and cands.boxes.shape == want_cands.boxes.shape
        assert torch.allclose(cands.boxes, want_cands.boxes)
        assert torch.allclose(got.pointer, want.pointer, atol=2e-4, rtol=1e-4)
    pred, kind = grounder.predict(image, record.instruction, lines)
    assert kind == "click" and 0 <= pred.point[0] <= 1 and 0 <= pred.confidence <= 1


def test_the_match_boost_skips_instructions_naming_a_control_beside_its_label(trained):
    out, records, _, _ = trained
    grounder = load_grounder(out)
    record = records[0]
    lines = [TextLine(ln.text, ln.box) for ln in record.ocr]
    with Image.open(record.image_path) as im:
        image = im.convert("RGB")
    label = record.instruction.split()[1]  # "the Save button" -> Save
    grounder.match_boost = 2.0
    for text, boosted in ((f"the {label} button", True), (f"the {label} field", False),
                          (f"tick {label}", False), (f"click {label}", True)):
        raw, _, match = grounder.head_logits(image, text, lines)
        got, _ = grounder.logits(image, text, lines)
        want = raw.pointer.clone()
        if boosted:
            want[0, :-1] += 2.0 * match
            assert match.abs().max() > 0
        assert torch.allclose(got.pointer, want), text


def test_exact_text_is_the_one_place_that_reads_the_query():
    lines = [TextLine("File Edit View Help", (0.0, 0.0, 0.4, 0.05)), TextLine("Malayal...", (0.0, 0.5, 0.1, 0.55)),
             TextLine("Save", (0.5, 0.5, 0.6, 0.55)), TextLine("Save as…", (0.5, 0.6, 0.6, 0.65)),
             TextLine("Open", (0.0, 0.9, 0.1, 0.95)), TextLine("OPEN", (0.2, 0.9, 0.3, 0.95))]
    edit = exact_text("open the Edit menu", lines)  # a word run, its box from character counts
    assert edit is not None and 0.09 < edit[0] < 0.12 and 0.17 < edit[2] < 0.2 and edit[1:4:2] == (0.0, 0.05)
    assert exact_text("the list item Malayalam", lines) == (0.0, 0.5, 0.1, 0.55)  # cut short by the toolkit
    assert exact_text("click Save", lines) == (0.5, 0.5, 0.6, 0.55)  # a whole line beats a run ("Save as…")
    assert exact_text("the 'Save as…' button", lines) == (0.5, 0.6, 0.6, 0.65)
    assert exact_text("click Open", lines) == (0.0, 0.9, 0.1, 0.95)  # read twice; written as asked once, not "OPEN"
    assert exact_text("click open", lines) is None  # written so nowhere: the model decides
    assert exact_text("the Close button", lines) is None


def test_exact_text_tells_a_navigation_link_by_its_arrows():
    """A documentation page names its neighbours twice: "<< Valgrind Documentation" in the navigation bar
    and the page title, "The Quick Start Guide" in the contents and "The Quick Start Guide »" below. The
    arrows the instruction writes (or does not) pick the place; « and >> are one arrow."""
    title, back = (0.4, 0.0, 0.6, 0.05), (0.0, 0.9, 0.2, 0.95)
    contents, onward = (0.0, 0.3, 0.2, 0.35), (0.7, 0.9, 1.0, 0.95)
    lines = [TextLine("Valgrind Documentation", title), TextLine("<<Valgrind Documentation", back),
             TextLine("The Quick Start Guide", contents), TextLine("The Quick Start Guide »", onward)]
    assert exact_text("open << Valgrind Documentation", lines) == back
    assert exact_text("open « Valgrind Documentation", lines) == back
    assert exact_text("open Valgrind Documentation", lines) == title
    found = exact_text("click the link The Quick Start Guide", lines)  # "Quick Start Guide": a run of words
    assert found is not None and contents[0] <= found[0] < found[2] <= contents[2] and found[1::2] == contents[1::2]
    assert exact_text("the 'The Quick Start Guide >>' link", lines) == onward


def test_exact_text_reads_a_name_wrapped_onto_two_lines():
    """On a phone-width page a link wraps: "The Quick" over "Start Guide >>" (right-aligned), "<<Valgrind"
    over "Documentation". The pair reads the name; the arrows then pick it over the one-line heading.
    Lines side by side, or far apart, are no pair."""
    heading, title = (0.0, 0.30, 0.6, 0.32), (0.3, 0.0, 0.8, 0.03)
    lines = [TextLine("The Quick Start Guide", heading), TextLine("Valgrind Documentation", title),
             TextLine("<<Valgrind", (0.03, 0.47, 0.24, 0.49)), TextLine("Documentation", (0.03, 0.49, 0.29, 0.51)),
             TextLine("The Quick", (0.65, 0.47, 0.97, 0.49)), TextLine("Start Guide >>", (0.71, 0.49, 0.97, 0.51)),
             TextLine("Release", (0.0, 0.60, 0.2, 0.62)), TextLine("Notes", (0.5, 0.60, 0.7, 0.62)),
             TextLine("Known", (0.0, 0.70, 0.2, 0.72)), TextLine("Bugs", (0.0, 0.80, 0.2, 0.82))]
    assert exact_text("open << Valgrind Documentation", lines) == (0.03, 0.47, 0.29, 0.51)
    assert exact_text("the 'The Quick Start Guide >>' link", lines) == (0.65, 0.47, 0.97, 0.51)
    found = exact_text("the link The Quick Start Guide", lines)  # no arrows: the heading's "Quick Start Guide"
    assert found is not None and heading[0] < found[0] < found[2] == heading[2] and found[1::2] == heading[1::2]
    assert exact_text("open Release Notes", lines) is None  # side by side: words of two places
    assert exact_text("open Known Bugs", lines) is None  # a line apart
    # a line of a symbol only (a separator, a bullet) is no half of a name
    assert written_places("click Save", [TextLine("Save", (0.1, 0.1, 0.2, 0.12)), TextLine("-", (0.1, 0.12, 0.12, 0.14))]) \
        == [(0.1, 0.1, 0.2, 0.12)]


def test_exact_text_keeps_the_little_words_of_a_name():
    """Articles after a name's start and a leading "By" belong to it; OCR's two-dot cut counts; where a
    label with a colon and a link read alike, the one written as asked is the answer."""
    lines = [TextLine("Linear A", (0.0, 0.1, 0.1, 0.15)), TextLine("Linear B", (0.0, 0.2, 0.1, 0.25)),
             TextLine("↓ By staff status", (0.5, 0.1, 0.7, 0.15)), TextLine("STAFF STATUS", (0.3, 0.3, 0.4, 0.35)),
             TextLine("Manicha..", (0.0, 0.5, 0.1, 0.55)), TextLine("Groups", (0.0, 0.7, 0.1, 0.75)),
             TextLine("Groups:", (0.3, 0.7, 0.4, 0.75))]
    assert exact_text("the list item Linear A", lines) == (0.0, 0.1, 0.1, 0.15)
    assert exact_text("click By staff status", lines) == (0.5, 0.1, 0.7, 0.15)
    assert exact_text("click STAFF STATUS", lines) == (0.3, 0.3, 0.4, 0.35)
    assert exact_text("the list item Manichaean", lines) == (0.0, 0.5, 0.1, 0.55)
    assert exact_text("click the link Groups", lines) == (0.0, 0.7, 0.1, 0.75)


def test_exact_text_keeps_determiners_inside_a_name_and_splits_words_at_dots():
    """"my" and "this" name no label where they start the query but belong to one in its middle; OCR runs
    words together across a dot ("ADA.VIEW SITE")."""
    lines = [TextLine("CHANGE PASSWORD", (0.5, 0.0, 0.7, 0.05)), TextLine("CHANGE MY PASSWORD", (0.1, 0.8, 0.3, 0.85)),
             TextLine("Show only glyphs from this font", (0.0, 0.3, 0.3, 0.35)),
             TextLine("WELCOME, ADA.VIE W SITE / LOG OUT", (0.0, 0.9, 0.5, 0.95))]
    assert exact_text("click the Change my password button", lines) == (0.1, 0.8, 0.3, 0.85)
    assert exact_text("choose Show only glyphs from this font", lines) == (0.0, 0.3, 0.3, 0.35)
    assert exact_queries("open my profile") == ["profile"]
    view_site = exact_text("the link to View site", lines)
    assert view_site is not None and 0.13 < view_site[0] < 0.2 and view_site[2] < 0.36


def test_the_loose_query_does_not_find_what_the_strict_one_would_not_mean():
    """Little words before a name go in the loose query too ("click on Save" is "Save", not the "On Save"
    of "Format On Save"), a whole line beats a run of words, and a lone article is no name."""
    lines = [TextLine("Format On Save", (0.0, 0.0, 0.3, 0.05)), TextLine("Save", (0.5, 0.5, 0.6, 0.55)),
             TextLine("Plan A", (0.0, 0.8, 0.1, 0.85))]
    assert exact_text("click on Save", lines) == (0.5, 0.5, 0.6, 0.55)
    assert exact_text("click the A button", lines) is None
    assert exact_text("select option A", lines) is None
    assert exact_queries("the list item Linear A") == ["Linear A", "Linear"]
    assert exact_queries("click the A button") == [""]


def test_text_written_once_is_answered_before_the_model_unless_it_labels_a_control(trained):
    from vlagent.grounding.grounders.head import HeadGrounder

    out, records, _, _ = trained
    record = records[0]
    lines = [TextLine(ln.text, ln.box) for ln in record.ocr]
    with Image.open(record.image_path) as im:
        image = im.convert("RGB")
    label = record.instruction.split()[1]
    box = next(ln.box for ln in lines if ln.text == label)
    grounder = HeadGrounder(out)
    result = grounder.ground(image, f"click {label}", lines=lines)
    assert result.found and result.raw == "exact text" and result.box == box and result.confidence == 1.0
    assert result.point == ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    for asked, kwargs in ((f"the {label} field", {}), (f"click {label}", {"text_first": False})):
        model_answer = HeadGrounder(out, **kwargs).ground(image, asked, lines=lines)
        assert model_answer.raw != "exact text"


def test_written_places_are_every_place_reading_the_name():
    lines = [TextLine("12:00", (0.02, 0.0, 0.08, 0.03)), TextLine("12:00", (0.3, 0.2, 0.7, 0.3)),
             TextLine("Next Script", (0.3, 0.5, 0.5, 0.55))]
    assert exact_queries("the text '12:00 PM'") == ["12:00 PM", "12:00"]  # clocks show the time alone
    assert exact_queries("the label 9.30 a.m.")[-1] == "9 30"
    assert written_places("the text '12:00 PM'", lines) == [lines[0].box, lines[1].box]
    assert exact_text("the text '12:00 PM'", lines) is None  # written twice: text first cannot say which
    assert len(written_places("click Script", lines)) == 1 and written_places("the Zorblax button", lines) == []


def test_a_refused_point_on_one_of_the_places_reading_the_name_is_the_answer(trained):
    """The name is written twice (the status bar's clock and the home screen's): the model, though it
    refuses, points into one of them, and that is the answer; a point on neither stays a refusal."""
    from vlagent.grounding.grounders.head import HeadGrounder
    from vlagent.model.grounding_head import HeadPrediction

    out, _, _, _ = trained
    grounder = HeadGrounder(out)
    lines = [TextLine("12:00", (0.02, 0.0, 0.08, 0.03)), TextLine("12:00", (0.3, 0.2, 0.7, 0.3))]
    image = Image.new("RGB", (320, 640), "white")
    for point, answer in (((0.5, 0.25), lines[1].box), ((0.5, 0.8), None)):
        refusal = HeadPrediction(point=point, confidence=0.6, found=False, box=(0.4, 0.2, 0.6, 0.3), p_none=0.7)
        grounder.model.predict = lambda *args, **kwargs: (refusal, "click")  # noqa: B023
        result = grounder.ground(image, "the text '12:00 PM'", lines=lines)
        assert result.found == (answer is not None) and (answer is None or result.box == answer), point
    assert not grounder.ground(image, "the Zorblax text", lines=lines).found  # written nowhere


def test_a_left_padded_batch_equals_each_instruction_alone(trained):
    out, records, _, cfg = trained
    model = TrainableGrounder(cfg)
    model.load_state_dict(torch.load(out / "checkpoint.pt", weights_only=False)["model"])
    model.eval()
    record = records[0]
    lines = [TextLine(ln.text, ln.box) for ln in record.ocr]
    with Image.open(record.image_path) as im:
        screen = model.screen_features(im.convert("RGB"))
    texts = ["the Save button", "click the button labelled 'Print' at the top", "Undo"]
    with torch.no_grad():
        batch, _ = model.forward_batch(screen, texts, lines)
        for i, text in enumerate(texts):
            alone, _ = model.forward_one(screen, text, lines)
            assert torch.allclose(batch.pointer[i], alone.pointer[0], atol=1e-4, rtol=1e-4), text


def test_resume_continues_from_the_checkpoint(trained, tmp_path):
    out, records, _, cfg = trained
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(out, copy)
    state = torch.load(copy / "checkpoint.pt", weights_only=False)
    assert state["step"] == 70
    cfg.steps = 72
    logs = []
    train(records, [], copy, cfg, resume=True, log=lambda m: logs.append(m), progress=lambda s, info: logs.append(s))
    assert "resumed" in logs[0] and logs[1:] == [71, 72]


def test_a_folder_without_grounder_weights_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a grounder folder"):
        load_grounder(tmp_path)


def test_the_training_command_ends_with_an_evaluation_of_what_it_wrote(tmp_path, capsys):
    pytest.importorskip("rapidocr_onnxruntime")
    from vlagent.cli import main

    _screens(tmp_path / "train", 2, seed=3)
    _screens(tmp_path / "val", 2, seed=4)
    out = tmp_path / "g"
    assert main(["train-grounding", "--data", str(tmp_path / "train" / "data.jsonl"), "--val",
                 str(tmp_path / "val" / "data.jsonl"), "--out", str(out), "--steps", "2", "--eval-every", "1",
                 "--final-eval", "5"]) == 0
    summary = __import__("json").loads((out / "final_eval.json").read_text())
    assert summary["targets"] == 5 and summary["negatives"] >= 1 and f"grounder:{out.name}" in summary["grounders"]
    assert "grounding accuracy: 5 targets" in capsys.readouterr().out


def test_ground_command_uses_a_grounder_and_exits_1_when_not_found(trained, tmp_path, capsys):
    import json

    from vlagent.cli import main

    out, records, _, _ = trained
    image = records[0].image_path
    rc = main(["ground", str(image), records[0].instruction, "--grounder", f"grounder:{out}", "--json",
               "--out", str(tmp_path / "g.png")])
    printed = json.loads(capsys.readouterr().out)
    assert rc == 0 and printed["found"] and len(printed["point"]) == 2 and printed["grounder"] == "grounder:model"
    assert (tmp_path / "g.png").exists() and printed["candidates"]
    rc = main(["ground", str(image), "the Zorblax button", "--grounder", f"grounder:{out},threshold=1.01", "--json",
               "--out", str(tmp_path / "n.png")])
    printed = json.loads(capsys.readouterr().out)
    assert rc == 1 and printed["point"] is None and not printed["found"] and "not on this screen" in printed["error"]
    assert main(["ground", str(image), "x", "--grounder", "grounder:/nonexistent"]) == 2


def test_ground_without_a_model_uses_the_best_offline_grounder(tmp_path, capsys):
    """No --model and no --grounder: the shipped grounder if this install has one, else OCR match."""
    import json

    from PIL import ImageFont

    from vlagent.cli import main
    from vlagent.grounding.grounders.head import DEFAULT_FOLDER

    image = Image.new("RGB", (640, 360), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 22)
    for x, label in ((60, "Open"), (260, "Save"), (460, "Close")):
        draw.rectangle([x, 150, x + 120, 200], outline="black", fill="#e8e8f0")
        draw.text((x + 60, 175), label, fill="black", font=font, anchor="mm")
    path = tmp_path / "screen.png"
    image.save(path)
    rc = main(["ground", str(path), "click the Save button", "--json"])
    printed = json.loads(capsys.readouterr().out)
    shipped = (DEFAULT_FOLDER / "grounder.safetensors").is_file()
    assert printed["grounder"] == ("grounder:default_grounder" if shipped else "ocr-match")
    assert rc == 0 and printed["found"]
    x, y = printed["point"]
    assert 260 / 640 <= x <= 380 / 640 and 150 / 360 <= y <= 200 / 360


def test_a_name_read_with_an_ocr_slip_is_found_when_nothing_reads_it_exactly():
    from vlagent.model.grounder import exact_text

    lines = [TextLine("Ubermehmen", (0.0, 0.0, 0.1, 0.1)), TextLine("Zurick", (0.0, 0.2, 0.1, 0.3)),
             TextLine("Straβe", (0.0, 0.4, 0.1, 0.5)), TextLine("Nimbus — Помошь Главная", (0.0, 0.6, 0.5, 0.7)),
             TextLine("Save", (0.0, 0.8, 0.1, 0.9)), TextLine("Drafts", (0.5, 0.0, 0.6, 0.1)),
             TextLine("Crafts", (0.5, 0.2, 0.6, 0.3))]
    assert exact_text("click the Übernehmen button", lines) == lines[0].box  # "rn" read as "m"
    assert exact_text("Zurück button", lines) == lines[1].box  # ü read as i
    assert exact_text("the Straße input", lines) == lines[2].box  # ß read as a beta
    box = exact_text("click Помощь", lines)  # щ read as ш, inside a nav bar's line
    assert box is not None and 0.15 < box[0] < 0.25 and box[2] < 0.35
    assert exact_text("the Sane button", lines) is None  # four letters must be read exactly
    assert exact_text("the Daft button", lines) is None
    assert exact_text("Grafts", lines) is None  # two places one slip away: neither
    assert exact_text("Abbrechen", lines) is None
    orders = [TextLine("Order 1003", (0.0, 0.0, 0.1, 0.1)), TextLine("Invoice 2O24-17", (0.0, 0.2, 0.1, 0.3))]
    assert exact_text("Order 1063", orders) is None  # a number one digit off is another number, no slip
    assert exact_text("Involce 2O24-17", orders) == orders[1].box  # a letter's slip, the digits as read


def test_a_button_is_no_word_inside_a_sentence():
    """"the Submit button" where the screen only writes "Press Enter in the field to submit it." (OCR: "sub
    mit"): a button's caption is never a word inside a sentence; a link's may be, so without "button"
    the word is still a place."""
    lines = [TextLine("Press Enter in the field to sub mit it.", (0.1, 0.76, 0.29, 0.79)),
             TextLine("Save", (0.5, 0.5, 0.6, 0.55)), TextLine("Forgot your password? Reset it", (0.0, 0.9, 0.3, 0.95))]
    assert exact_text("the Submit button", lines) is None
    assert exact_text("the Submitt button", lines) is None  # nor nearly so
    assert exact_text("click submit", lines) is not None
    assert exact_text("the Save button", lines) == (0.5, 0.5, 0.6, 0.55)
    assert exact_text("the Reset it link", lines) is not None  # no full stop: not a sentence
    # running text without a full stop: a subtitle, a wrapped paragraph's line; icons too
    lines += [TextLine("Sign in to continue to Acme", (0.3, 0.3, 0.5, 0.33)),
              TextLine("The settings for the forecast model were left", (0.3, 0.4, 0.7, 0.43)),
              TextLine("File Edit View Help", (0.0, 0.0, 0.3, 0.03))]
    assert exact_text("the Continue button", lines) is None
    assert exact_text("the settings icon", lines) is None
    assert exact_text("the Edit button", lines) is not None  # a menu bar read as one line is no sentence


@pytest.mark.parametrize("instruction, text_only", [
    ("19", True), ("Delete all files?", True), ("tap on 'Settings'", True), ("12:00 PM", True),
    ("click Save", False), ("open a file", False),  # a verb: perhaps other words for a label ("Open")
    ("the Save button", False), ("the 7 button", False), ("the File menu", False), ("the 'Save' button", False),
    ("Save As in the File menu", False), ("tick Remember me", False), ("type hi into the Name field", False),
    ("the first row", False),
])
def test_an_instruction_naming_text_alone(instruction, text_only):
    assert names_text_only(instruction) is text_only


def test_text_alone_must_be_written_where_it_is_found():
    lines = [TextLine("19", (0.80, 0.05, 0.90, 0.10)), TextLine("9", (0.45, 0.30, 0.47, 0.34)),
             TextLine("Delete all temporary files?", (0.30, 0.50, 0.60, 0.54)), TextLine("apples", (0.1, 0.8, 0.2, 0.84))]
    unit = 0.04
    on_display, on_key, under_question = (0.85, 0.07), (0.46, 0.32), (0.58, 0.62)
    assert written_like("19", lines, on_display, unit) and written_like("'19'", lines, on_display, unit)
    assert not written_like("19", lines, on_key, unit)  # "9" is not "19"
    assert not written_like("190", lines, on_display, unit) and not written_like("91", lines, on_display, unit)
    assert written_like("l9", lines, on_display, unit)  # OCR's letters for digits
    assert written_like("Delete all temporary files?", lines, (0.45, 0.52), unit)
    assert written_like("Delete all temporary file", lines, (0.45, 0.52), unit)  # an OCR slip
    assert not written_like("Delete all files?", lines, under_question, unit)  # nothing written there
    assert not written_like("Find and Replace...", lines, (0.15, 0.82), unit)
