"""The action-grounding head (model/grounding_head.py): targets, decoding, loss, weights file, and
head-only training on a frozen tiny Qwen3.5 checkpoint."""
from __future__ import annotations

import pytest
import torch

from tiny_checkpoints import tiny_checkpoint
from vlagent.model import load_model
from vlagent.model.grounding_head import (
    Candidates,
    GroundingHead,
    GroundingHeadConfig,
    HeadLogits,
    decode_logits,
    decode_point,
    grounding_loss,
    sub_cell_target,
    load_head,
    pointer_target,
    save_head,
    screen_features,
)


def _probs_on(cells: dict[int, float], n: int, p_none: float = 0.0) -> torch.Tensor:
    p = torch.zeros(n + 1)
    for i, v in cells.items():
        p[i] = v
    p[-1] = p_none
    return p / p.sum()


def test_target_spreads_over_covered_cells_by_area():
    c = Candidates.patches(4, 6)
    t = pointer_target(torch.tensor([0.0, 0.0, 0.25, 0.5]), c)
    grid = t[:-1].view(4, 6)
    # x 0..0.25 covers column 0 fully and half of column 1; y 0..0.5 covers rows 0-1
    assert torch.allclose(grid[:2, 0], torch.full((2,), 1 / 3)) and torch.allclose(grid[:2, 1], torch.full((2,), 1 / 6))
    assert grid[2:].sum() == 0 and grid[:, 2:].sum() == 0 and t[-1] == 0
    assert torch.isclose(t.sum(), torch.tensor(1.0))
    none = pointer_target(None, c)
    assert none[-1] == 1 and none[:-1].sum() == 0


def test_target_for_a_box_between_cell_edges_and_for_text_lines():
    c = Candidates.patches(2, 2).with_text_lines(torch.tensor([[0.1, 0.1, 0.4, 0.2], [0.6, 0.6, 0.9, 0.7]]))
    t = pointer_target(torch.tensor([0.05, 0.05, 0.45, 0.25]), c)
    assert t[4] == 1 and t[5] == 0  # the text line inside the box takes all the mass, the other none
    assert t[:4].sum() == 0  # the cells around a read label get nothing: one sharp answer
    thin = Candidates.patches(2, 2)
    t = pointer_target(torch.tensor([0.7, 0.3, 0.7, 0.3]), thin)  # a zero-area box: the cell holding it
    assert t[1] == 1


def test_decode_point_takes_the_weighted_centre_of_the_best_region():
    c = Candidates.patches(4, 4)
    # cells (1,1) and (1,2) carry the mass: the point lies between their centres, weighted 3:1
    pred = decode_point(_probs_on({5: 0.6, 6: 0.2, 15: 0.1}, 16, p_none=0.1), c)
    assert pred.found
    assert pred.point == pytest.approx((0.375 * 0.75 + 0.625 * 0.25, 0.375), abs=1e-6)
    assert pred.confidence == pytest.approx(0.8, abs=1e-6)
    assert pred.box == pytest.approx((0.25, 0.25, 0.5, 0.5))
    assert pred.candidates and pred.candidates[0][0] == pytest.approx((0.875, 0.875))


def test_decode_point_applies_the_in_cell_offset_and_reports_nothing_found():
    c = Candidates.patches(2, 2)
    offset = torch.zeros(4, 2)
    offset[3] = torch.tensor([0.5, -0.5])
    pred = decode_point(_probs_on({3: 0.9}, 4, p_none=0.1), c, offset)
    assert pred.point == pytest.approx((1.0, 0.5))
    missing = decode_point(_probs_on({0: 0.2, 3: 0.1}, 4, p_none=0.7), c)
    assert not missing.found and missing.p_none == pytest.approx(0.7)
    with pytest.raises(ValueError, match=r"\[N\+1\]"):
        decode_point(torch.ones(4) / 4, c)


def test_none_ratio_decides_how_much_nothing_here_may_outweigh_the_best_region():
    c = Candidates.patches(2, 2)
    probs = _probs_on({0: 0.3}, 4, p_none=0.7)
    assert not decode_point(probs, c, threshold=0.1).found  # "nothing here" outweighs the region
    assert decode_point(probs, c, threshold=0.1, none_ratio=0.25).found  # 0.3 > 0.25 x 0.7
    assert not decode_point(probs, c, threshold=0.5, none_ratio=0.0).found  # the threshold still holds


def test_head_rejects_mismatched_shapes():
    head = GroundingHead(GroundingHeadConfig(hidden_size=16))
    with pytest.raises(ValueError, match="hidden size must be 16"):
        head(torch.randn(1, 8), torch.randn(1, 5, 8))
    with pytest.raises(ValueError, match=r"\[B,H\]"):
        head(torch.randn(16), torch.randn(1, 5, 16))
    with pytest.raises(ValueError, match="candidate_mask"):
        head(torch.randn(1, 16), torch.randn(1, 5, 16), torch.ones(1, 4, dtype=torch.bool))


def test_the_prior_maps_are_mixed_per_instruction_into_the_pointer():
    head = GroundingHead(GroundingHeadConfig(hidden_size=16, prior_maps=3))
    action, cands = torch.randn(2, 16), torch.randn(2, 5, 16)
    prior = torch.zeros(2, 5, 3)
    prior[:, 2, 0] = 8.0  # channel 0 (a line's match) starts with weight 1: candidate 2 wins
    plain, biased = head(action, cands), head(action, cands, prior=prior)
    assert torch.allclose(biased.pointer[:, [0, 1, 3, 4, 5]], plain.pointer[:, [0, 1, 3, 4, 5]])
    assert torch.allclose(biased.pointer[:, 2], plain.pointer[:, 2] + 8.0)
    prior[:, 4, 1] = 5.0  # channels 1.. start at weight 0: nothing until training learns to use them
    assert torch.allclose(head(action, cands, prior=prior).pointer, biased.pointer)
    with pytest.raises(ValueError, match="prior_maps"):
        head(action, cands, prior=torch.zeros(2, 5, 2))


def test_a_text_line_tokens_own_score_is_bounded_so_its_match_decides():
    head = GroundingHead(GroundingHeadConfig(hidden_size=16, prior_maps=1, line_content_limit=2.0))
    torch.nn.init.normal_(head.query.weight, std=3.0)
    action, cands = torch.randn(1, 16), torch.randn(1, 6, 16) * 10
    free = head(action, cands).pointer  # without first_line nothing is bounded
    bounded = head(action, cands, first_line=3).pointer
    assert torch.equal(bounded[:, :3], free[:, :3]) and torch.equal(bounded[:, 6], free[:, 6])  # cells, none
    assert torch.allclose(bounded[:, 3:6], 2.0 * torch.tanh(free[:, 3:6] / 2.0))
    assert free[:, 3:6].abs().max() > 2.0 and bounded[:, 3:6].abs().max() <= 2.0
    prior = torch.zeros(1, 6, 1)
    prior[0, 4, 0] = 4.5  # a strong match wins among the lines whatever the lines' own scores
    lines = head(action, cands, prior=prior, first_line=3).pointer[0, 3:6]
    assert int(lines.argmax()) == 1


def test_masked_candidates_get_no_probability():
    head = GroundingHead(GroundingHeadConfig(hidden_size=16))
    mask = torch.tensor([[True, False, True]])
    out = head(torch.randn(1, 16), torch.randn(1, 3, 16), mask)
    assert out.pointer.softmax(-1)[0, 1] == 0


@pytest.mark.parametrize("sub_cells", [0, 4])
def test_weights_file_round_trips_and_names_a_wrong_file(tmp_path, sub_cells):
    head = GroundingHead(GroundingHeadConfig(hidden_size=16, proj_dim=8, sub_cells=sub_cells))
    for p in head.parameters():
        torch.nn.init.normal_(p)
    path = save_head(head, tmp_path / "head.safetensors")
    again = load_head(path)
    a, b = torch.randn(2, 16), torch.randn(2, 7, 16)
    x, y = head(a, b), again(a, b)
    assert torch.equal(x.pointer, y.pointer) and torch.equal(x.offset, y.offset) and torch.equal(x.kind, y.kind)
    assert again.config == head.config
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not a grounding head file"):
        load_head(tmp_path / "other.safetensors")
    with pytest.raises(FileNotFoundError):
        load_head(tmp_path / "missing.safetensors")


def test_loss_falls_on_a_separable_problem():
    """Candidate features carry a marker where the target is; a head trained on them learns to point there."""
    torch.manual_seed(0)
    H, rows, cols = 24, 4, 5
    c = Candidates.patches(rows, cols)
    head = GroundingHead(GroundingHeadConfig(hidden_size=H, proj_dim=16))
    opt = torch.optim.Adam(head.parameters(), lr=3e-2)
    marker = torch.randn(H)

    def batch(n):
        targets = torch.randint(0, rows * cols, (n,))
        feats = torch.randn(n, rows * cols, H) * 0.5
        feats[torch.arange(n), targets] += marker
        return torch.randn(n, H) * 0.1, feats, [c.boxes[t] for t in targets]

    losses = []
    for _ in range(60):
        q, k, boxes = batch(16)
        loss, _ = grounding_loss(head(q, k), boxes, [c] * 16, kinds=torch.zeros(16, dtype=torch.long))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    q, k, boxes = batch(32)
    with torch.no_grad():
        out = head(q, k)
    hits = 0
    for i in range(32):
        x, y = decode_point(out.pointer[i].softmax(-1), c, out.offset[i]).point
        b = boxes[i]
        hits += bool(b[0] <= x <= b[2] and b[1] <= y <= b[3])
    assert hits >= 28


def test_negative_targets_teach_nothing_here():
    c = Candidates.patches(2, 2)
    logits = HeadLogits(pointer=torch.zeros(1, 5, requires_grad=True), kind=torch.zeros(1, 6), offset=torch.zeros(1, 4, 2))
    loss, parts = grounding_loss(logits, [None], [c])
    loss.backward()
    assert logits.pointer.grad[0, -1] < 0 and (logits.pointer.grad[0, :-1] > 0).all()
    assert parts["offset"] == 0


def _screen_prompt(model, seed: int, grid=(8, 12)):
    cfg = model.config
    g = torch.Generator().manual_seed(seed)
    rows, cols = grid[0] // 2, grid[1] // 2
    before = torch.randint(20, 500, (6,), generator=g).tolist()
    after = torch.randint(20, 500, (5,), generator=g).tolist()
    ids = before + [cfg.vision_start_token_id] + [cfg.image_token_id] * (rows * cols) + [cfg.vision_end_token_id] + after
    return dict(input_ids=torch.tensor([ids]), pixel_values=torch.randn(grid[0] * grid[1], 3 * 2 * 16 * 16, generator=g),
                image_grid_thw=torch.tensor([[1, grid[0], grid[1]]]))


def test_head_only_training_on_a_frozen_tiny_checkpoint_changes_only_the_head():
    torch.manual_seed(0)
    model = load_model(tiny_checkpoint("dense"), dtype=torch.float32)
    backbone_before = {k: v.clone() for k, v in model.state_dict().items()}
    examples = []
    for seed in range(4):
        action, cands, c = screen_features(model, **_screen_prompt(model, seed))
        assert cands.shape[1] == c.num_patches == 24 and action.shape == (1, model.config.text.hidden_size)
        examples.append((action, cands, c, c.boxes[(seed * 7) % 24]))
    head = GroundingHead(GroundingHeadConfig(hidden_size=model.config.text.hidden_size, proj_dim=32))
    head_before = {k: v.clone() for k, v in head.state_dict().items()}
    opt = torch.optim.Adam(head.parameters(), lr=2e-2)
    first = last = None
    for step in range(80):
        a = torch.cat([e[0] for e in examples])
        k = torch.cat([e[1] for e in examples])
        loss, _ = grounding_loss(head(a, k), [e[3] for e in examples], [e[2] for e in examples])
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
        last = loss.item()
    assert last < 0.2 * first
    for action, cands, c, box in examples:  # memorized: each screen's point lands in its own target cell
        with torch.no_grad():
            out = head(action, cands)
        x, y = decode_point(out.pointer[0].softmax(-1), c, out.offset[0]).point
        assert box[0] <= x <= box[2] and box[1] <= y <= box[3]
    assert all(torch.equal(v, backbone_before[k]) for k, v in model.state_dict().items())
    assert any(not torch.equal(v, head_before[k]) for k, v in head.state_dict().items())


def test_screen_features_rejects_a_batch_and_a_prompt_without_its_image_tokens():
    model = load_model(tiny_checkpoint("dense"), dtype=torch.float32)
    inputs = _screen_prompt(model, 0)
    with pytest.raises(ValueError, match=r"one prompt \[1,T\]"):
        screen_features(model, inputs["input_ids"].repeat(2, 1), inputs["pixel_values"], inputs["image_grid_thw"])


def test_sub_cell_target_is_the_share_of_each_sub_cell_the_box_covers():
    c = Candidates.patches(2, 2)  # cells 0.5 wide; sub-cells 0.125
    weights, targets = sub_cell_target(torch.tensor([0.0, 0.25, 0.5, 0.5]), c, 4)  # the lower half of cell 0
    assert torch.allclose(weights, torch.tensor([0.5, 0.0, 0.0, 0.0]))
    want = torch.zeros(16)
    want[8:] = 1 / 8  # sub-rows 2 and 3
    assert torch.allclose(targets[0], want)
    # A box thinner than a sub-cell, between sub-cell edges: the sub-cell holding its centre.
    weights, targets = sub_cell_target(torch.tensor([0.30, 0.30, 0.30, 0.30]), c, 4)
    assert weights[0] > 0 and int(targets[0].argmax()) == 2 * 4 + 2 and targets[0].max() == 1.0


def test_the_instruction_chooses_the_place_inside_a_cell():
    """A label and its field in ONE cell: top-left for one instruction, bottom-right for the other. The
    sub-cell pointer, queried by the instruction, learns to tell them apart; an offset regressed from the
    cell alone gives both instructions the same point (it never sees the instruction)."""
    torch.manual_seed(0)
    H, c = 24, Candidates.patches(3, 3)
    label, field = torch.tensor([0.0, 0.0, 0.1, 0.1]), torch.tensor([0.2, 0.2, 1 / 3, 1 / 3])  # both in cell 0
    which = torch.randn(2, H)  # the two instructions' action states

    def batch(n):
        pick = torch.randint(0, 2, (n,))
        cells = torch.randn(n, 9, H) * 0.3
        cells[:, 0] += 2.0  # the cell holding both
        return which[pick] + torch.randn(n, H) * 0.05, cells, [label if p == 0 else field for p in pick]

    heads = {k: GroundingHead(GroundingHeadConfig(hidden_size=H, proj_dim=16, sub_cells=k)) for k in (0, 4)}
    for head in heads.values():
        opt = torch.optim.Adam(head.parameters(), lr=2e-2)
        for _ in range(150):
            q, k, boxes = batch(16)
            loss, _ = grounding_loss(head(q, k), boxes, [c] * 16)
            opt.zero_grad()
            loss.backward()
            opt.step()
    q, k, boxes = batch(40)
    hits = {}
    for name, head in heads.items():
        with torch.no_grad():
            out = head(q, k)
        points = [decode_point(out.pointer[i].softmax(-1), c, out.offset[i]).point for i in range(40)]
        hits[name] = sum(b[0] <= x <= b[2] and b[1] <= y <= b[3] for (x, y), b in zip(points, boxes))
    assert hits[4] >= 38 and hits[0] <= 30


def test_a_text_line_token_keeps_its_span_centre_in_a_sub_cell_head():
    head = GroundingHead(GroundingHeadConfig(hidden_size=16, sub_cells=4))
    for p in head.parameters():
        torch.nn.init.normal_(p)
    out = head(torch.randn(1, 16), torch.randn(1, 6, 16), first_line=4)
    assert out.sub.shape == (1, 6, 16)
    assert out.offset[0, :4].abs().max() > 0 and out.offset[0, 4:].abs().max() == 0
    assert out.offset.abs().max() < 0.5


def test_a_sub_cell_head_points_from_the_best_cell_of_the_heaviest_region():
    """The demo's "Name field": a row of field cells (heaviest region), one cell of the label row above
    joining it, and the label's own text-line token as the single most probable candidate."""
    c = Candidates.patches(3, 4).with_text_lines(torch.tensor([[0.0, 0.30, 0.2, 0.36]]))
    probs = torch.zeros(14)
    probs[12] = 0.20  # the label's line token
    probs[[4, 5, 6, 7]] = torch.tensor([0.12, 0.16, 0.12, 0.10])  # the field's row (row 1)
    probs[1] = 0.10  # the label row, above
    probs[13] = 0.2  # nothing here
    offset = torch.zeros(13, 2)
    offset[:12, 1] = 0.3  # every cell: the lower part (the field sits low in row 1)
    plain = decode_point(probs, c, offset, threshold=0.0)
    assert plain.box == tuple(c.boxes[12].tolist()) and plain.confidence == pytest.approx(0.2)  # the label
    best = decode_point(probs, c, offset, threshold=0.0, best_cell=True)
    assert best.confidence == pytest.approx(0.60)  # the field row with the cell above it
    assert best.point == pytest.approx((0.375, 0.5 + 0.3 / 3))  # cell 5's own sub-cell point, not pulled up
    assert best.candidates[0][1] == pytest.approx(0.2)  # the label, as an alternative
    head = GroundingHead(GroundingHeadConfig(hidden_size=8, sub_cells=2))
    out = head(torch.randn(1, 8), torch.randn(1, 13, 8), first_line=12)
    assert decode_logits(out, c).point == decode_point(out.pointer[0].softmax(-1), c, out.offset[0],
                                                       best_cell=True).point
