"""The action-grounding head: a pointer over the screen's tokens, in the style of GUI-Actor.

The hidden state at the action position (the prompt's last token) is a query; every candidate token
(the current screenshot's visual tokens, and text-line tokens where a model reads OCR lines) is a key.
Their scaled dot products, plus one learned "nothing here" key, give a distribution over the screen:

    logits = head(action_hidden [B,H], candidate_hidden [B,N,H], candidate_mask [B,N])
    pred = decode_logits(logits, candidates)  # row 0

The point comes from the best region (the most probable candidate and its neighbouring patches above a
fraction of its probability): for a sub-cell head, the sub-cell point of the region's most probable cell
(regions ranked by mass); for an older head, the probability-weighted centre of the region's cells, each
refined by its predicted offset. Confidence is the region's probability mass; `found` is False when the
"nothing here" key outweighs it or the mass is under a threshold. Beside the pointer, an action-kind
classifier (click, double, right, type, scroll, long-press).

Coordinates are the project's one convention: normalized [0, 1] of the screenshot, x right, y down.
Head weights live in a small separate safetensors file (save_head / load_head).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACTION_KINDS = ("click", "double_click", "right_click", "type", "scroll", "long_press")


@dataclass
class GroundingHeadConfig:
    hidden_size: int
    proj_dim: int = 128
    action_kinds: tuple[str, ...] = ACTION_KINDS
    prior_maps: int = 1  # channels of the optional prior (GroundingHead.forward's `prior`)
    # > 0: a text-line token's own score (query . key) is squashed into (-limit, limit), so what the line
    # says (its match with the instruction, through the prior) decides between lines, not what it looks
    # like; 0: unbounded
    line_content_limit: float = 0.0
    # > 0: where inside a cell the target lies is chosen among sub_cells x sub_cells sub-cells, by a pointer
    # of its own that the instruction queries (a label and its field can share one cell); 0: an offset
    # regressed from the cell alone, the same for every instruction (heads trained before sub-cells)
    sub_cells: int = 0
    sub_dim: int = 32

    def to_dict(self) -> dict:
        d = asdict(self)
        d["action_kinds"] = list(d["action_kinds"])
        return d

    @classmethod
    def from_dict(cls, raw: dict) -> "GroundingHeadConfig":
        """From to_dict's output; settings added later take their old behaviour when missing."""
        return cls(hidden_size=raw["hidden_size"], proj_dim=raw["proj_dim"],
                   action_kinds=tuple(raw.get("action_kinds", ACTION_KINDS)), prior_maps=raw.get("prior_maps", 1),
                   line_content_limit=raw.get("line_content_limit", 0.0), sub_cells=raw.get("sub_cells", 0),
                   sub_dim=raw.get("sub_dim", 32))

    def sub_cell_centres(self) -> Tensor:
        """[sub_cells**2, 2] (x, y) of each sub-cell's centre in cell units, in (-0.5, 0.5), row-major."""
        return (_sub_cell_corners(self.sub_cells) + 0.5) / self.sub_cells - 0.5


def _sub_cell_corners(k: int, device=None) -> Tensor:
    """[k*k, 2] (column, row) of each sub-cell of a cell cut k x k, row-major."""
    steps = torch.arange(k, dtype=torch.float32, device=device)
    ys, xs = torch.meshgrid(steps, steps, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], dim=-1)


@dataclass
class Candidates:
    """What the pointer can point at, for one screen: boxes [N,4] (x0,y0,x1,y1 normalized) and, for the
    first rows*cols candidates, their place in the visual-token grid (row-major); text-line tokens follow."""
    boxes: Tensor
    grid: tuple[int, int] | None = None

    @property
    def num_patches(self) -> int:
        return 0 if self.grid is None else self.grid[0] * self.grid[1]

    @classmethod
    def patches(cls, rows: int, cols: int, device=None) -> "Candidates":
        """The cells of a rows x cols visual-token grid covering the whole screenshot."""
        ys, xs = torch.meshgrid(torch.arange(rows, device=device), torch.arange(cols, device=device), indexing="ij")
        x0, y0 = xs.flatten() / cols, ys.flatten() / rows
        boxes = torch.stack([x0, y0, x0 + 1 / cols, y0 + 1 / rows], dim=-1).float()
        return cls(boxes=boxes, grid=(rows, cols))

    def with_text_lines(self, line_boxes: Tensor) -> "Candidates":
        return Candidates(boxes=torch.cat([self.boxes, line_boxes.to(self.boxes)], dim=0), grid=self.grid)


@dataclass
class HeadLogits:
    pointer: Tensor  # [B, N+1]; the last column is "nothing here"
    kind: Tensor  # [B, len(action_kinds)]
    offset: Tensor  # [B, N, 2], in cell units, within (-0.5, 0.5)
    sub: Tensor | None = None  # [B, N, sub_cells**2] sub-cell logits (sub-cell heads); offset is their mean


@dataclass
class HeadPrediction:
    point: tuple[float, float]
    confidence: float
    found: bool
    box: tuple[float, float, float, float]  # the best candidate's box
    p_none: float
    candidates: list[tuple[tuple[float, float], float]] = field(default_factory=list)  # other regions, best first


class GroundingHead(nn.Module):
    def __init__(self, config: GroundingHeadConfig):
        super().__init__()
        self.config = config
        H, D, prior_maps = config.hidden_size, config.proj_dim, config.prior_maps
        self.query = nn.Linear(H, D)
        self.key = nn.Linear(H, D)
        self.null_key = nn.Parameter(torch.zeros(D))
        # how much each prior map counts, per instruction: a text line's match with the instruction a lot
        # for "the Save button", the map "just right of the label" for "the Name field"
        self.prior_mix = nn.Linear(H, prior_maps)
        nn.init.zeros_(self.prior_mix.weight)
        nn.init.zeros_(self.prior_mix.bias)
        with torch.no_grad():
            self.prior_mix.bias[0] = 1.0
        self.kind = nn.Linear(H, len(config.action_kinds))
        if config.sub_cells > 0:
            self.sub_query = nn.Linear(H, config.sub_cells**2 * config.sub_dim)
            self.sub_key = nn.Linear(H, config.sub_dim)
            self.register_buffer("sub_centres", config.sub_cell_centres(), persistent=False)
        else:
            self.offset = nn.Linear(H, 2)
            nn.init.zeros_(self.offset.weight)
            nn.init.zeros_(self.offset.bias)

    def forward(self, action_hidden: Tensor, candidate_hidden: Tensor, candidate_mask: Tensor | None = None,
                prior: Tensor | None = None, first_line: int | None = None) -> HeadLogits:
        """prior [B,N,prior_maps], optional: maps over the candidates, mixed per instruction into a logit.
        first_line: where the text-line tokens start among the candidates (for line_content_limit)."""
        if action_hidden.dim() != 2 or candidate_hidden.dim() != 3 or candidate_hidden.shape[0] != action_hidden.shape[0]:
            raise ValueError(f"action_hidden must be [B,H] and candidate_hidden [B,N,H]; got "
                             f"{tuple(action_hidden.shape)} and {tuple(candidate_hidden.shape)}")
        if action_hidden.shape[-1] != self.config.hidden_size or candidate_hidden.shape[-1] != self.config.hidden_size:
            raise ValueError(f"hidden size must be {self.config.hidden_size}; got {action_hidden.shape[-1]} "
                             f"and {candidate_hidden.shape[-1]}")
        dtype = self.query.weight.dtype
        q = self.query(action_hidden.to(dtype))  # [B, D]
        k = self.key(candidate_hidden.to(dtype))  # [B, N, D]
        keys = torch.cat([k, self.null_key.expand(k.shape[0], 1, -1)], dim=1)
        pointer = torch.einsum("bd,bnd->bn", q, keys) * self.config.proj_dim**-0.5
        limit = self.config.line_content_limit
        if limit > 0 and first_line is not None and first_line < k.shape[1]:
            lines = limit * torch.tanh(pointer[:, first_line: k.shape[1]] / limit)
            pointer = torch.cat([pointer[:, :first_line], lines, pointer[:, k.shape[1]:]], dim=1)
        if prior is not None:
            want = (*candidate_hidden.shape[:2], self.config.prior_maps)
            if tuple(prior.shape) != want:
                raise ValueError(f"prior must be [B,N,prior_maps]={want}; got {tuple(prior.shape)}")
            mix = self.prior_mix(action_hidden.to(dtype))  # [B, maps]
            bias = torch.einsum("bnm,bm->bn", prior.to(dtype), mix)
            pointer = pointer + torch.cat([bias, bias.new_zeros(k.shape[0], 1)], dim=1)
        if candidate_mask is not None:
            if candidate_mask.shape != candidate_hidden.shape[:2]:
                raise ValueError(f"candidate_mask must be [B,N]={tuple(candidate_hidden.shape[:2])}")
            keep = torch.cat([candidate_mask.bool(), candidate_mask.new_ones(k.shape[0], 1).bool()], dim=1)
            pointer = pointer.masked_fill(~keep, float("-inf"))
        kind = self.kind(action_hidden.to(dtype)).float()
        if self.config.sub_cells <= 0:
            offset = 0.5 * torch.tanh(self.offset(candidate_hidden.to(dtype)))
            return HeadLogits(pointer=pointer.float(), kind=kind, offset=offset.float())
        sub = self.sub_logits(action_hidden.to(dtype), candidate_hidden.to(dtype)).float()
        offset = sub.softmax(-1) @ self.sub_centres  # [B, N, 2]: the expected place inside the cell
        if first_line is not None:  # a text-line token's box is already the named span: its centre
            offset[:, first_line:] = 0
        return HeadLogits(pointer=pointer.float(), kind=kind, offset=offset, sub=sub)

    def sub_logits(self, action_hidden: Tensor, candidate_hidden: Tensor) -> Tensor:
        """[B, N, sub_cells**2]: for every cell, which of its sub-cells the instruction points at."""
        B, D = action_hidden.shape[0], self.config.sub_dim
        q = self.sub_query(action_hidden).view(B, -1, D)  # [B, S, D]: one query per sub-cell
        k = self.sub_key(candidate_hidden)  # [B, N, D]
        return torch.einsum("bsd,bnd->bns", q, k) * D**-0.5


# ---------------------------------------------------------------- from a distribution to a point

def decode_logits(logits: HeadLogits, candidates: Candidates, row: int = 0, **options) -> HeadPrediction:
    """decode_point for one row of the head's output, the way its kind of head reads best: a sub-cell head
    knows where inside a cell the target lies, so its point comes from one cell (best_cell=True)."""
    return decode_point(logits.pointer[row].softmax(-1), candidates, logits.offset[row],
                        best_cell=logits.sub is not None, **options)


def decode_point(probs: Tensor, candidates: Candidates, offset: Tensor | None = None, *, region_ratio: float = 0.3,
                 threshold: float = 0.3, none_ratio: float = 1.0, top_k: int = 3,
                 best_cell: bool = False) -> HeadPrediction:
    """probs [N+1] (softmax of one row of HeadLogits.pointer) -> the point, its confidence and alternatives.
    Found: the best region's mass is at least `threshold` and more than `none_ratio` x "nothing here".
    best_cell: the best region is the one with the most mass (not the one holding the most probable
    candidate), and its point is its most probable cell's, refined by that cell's offset alone: a centre
    weighted over the region's cells is pulled toward neighbours that hold something else (the label in
    the row above a field)."""
    n = candidates.boxes.shape[0]
    if probs.dim() != 1 or probs.shape[0] != n + 1:
        raise ValueError(f"probs must be [N+1]={n + 1} (the candidates plus 'nothing here'); got {tuple(probs.shape)}")
    probs = probs.detach().float().cpu()
    boxes = candidates.boxes.detach().float().cpu()
    offset = torch.zeros(n, 2) if offset is None else offset.detach().float().cpu()
    p_none = probs[-1].item()
    remaining = probs[:-1].clone()
    regions = []
    while len(regions) < top_k and remaining.max() > 0:
        members = _region(remaining, candidates, region_ratio)
        regions.append((members, probs[members].sum().item()))
        remaining[members] = 0
    if best_cell:
        regions.sort(key=lambda region: -region[1])

    def centre(members: list[int]) -> tuple[float, float]:
        return _weighted_centre(members[:1] if best_cell else members, probs, boxes, offset)

    members, mass = regions[0]
    point = centre(members)
    best = members[0]
    others = [(centre(m), p) for m, p in regions[1:]]
    found = mass >= threshold and mass > none_ratio * p_none
    return HeadPrediction(point=point, confidence=mass, found=found, box=tuple(boxes[best].tolist()), p_none=p_none,
                          candidates=others)


def _region(probs: Tensor, candidates: Candidates, ratio: float) -> list[int]:
    """The most probable candidate, plus (for a patch) its 8-connected neighbours above ratio x its probability."""
    best = int(probs.argmax())
    if best >= candidates.num_patches:  # a text-line token is a region of its own
        return [best]
    rows, cols = candidates.grid
    floor = ratio * probs[best].item()
    members, frontier, seen = [best], [best], {best}
    while frontier:
        idx = frontier.pop()
        r, c = divmod(idx, cols)
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                rr, cc = r + dr, c + dc
                j = rr * cols + cc
                if 0 <= rr < rows and 0 <= cc < cols and j not in seen and probs[j].item() >= floor:
                    seen.add(j)
                    members.append(j)
                    frontier.append(j)
    return members


def _weighted_centre(members: list[int], probs: Tensor, boxes: Tensor, offset: Tensor) -> tuple[float, float]:
    idx = torch.tensor(members)
    b = boxes[idx]
    size = b[:, 2:] - b[:, :2]
    centres = (b[:, :2] + b[:, 2:]) / 2 + offset[idx] * size
    w = probs[idx] / probs[idx].sum()
    x, y = (centres * w[:, None]).sum(0).clamp(0.0, 1.0).tolist()
    return (x, y)


# ---------------------------------------------------------------- training targets and loss

def pointer_target(target_box: Tensor | None, candidates: Candidates) -> Tensor:
    """[N+1] target distribution: each candidate gets the share of its own area that the target box covers
    (patches inside the box count fully, a patch half covered counts half), normalized; a text-line token
    counts only if it lies mostly inside the box, and then the line tokens take all the mass. None (nothing on screen) puts all mass on the last column."""
    boxes = candidates.boxes.float()
    n = boxes.shape[0]
    target = torch.zeros(n + 1, device=boxes.device)
    if target_box is None:
        target[-1] = 1.0
        return target
    tb = target_box.to(boxes)
    lo, hi = torch.maximum(boxes[:, :2], tb[:2]), torch.minimum(boxes[:, 2:], tb[2:])
    inter = (hi - lo).clamp(min=0).prod(-1)
    area = (boxes[:, 2:] - boxes[:, :2]).prod(-1).clamp(min=1e-12)
    cover = inter / area
    cover[candidates.num_patches:] = (cover[candidates.num_patches:] >= 0.5).float()
    if cover[candidates.num_patches:].sum() > 0:  # the target's text was read: all mass on its line token(s),
        cover[: candidates.num_patches] = 0  # one sharp answer instead of a share spread over coarse cells
    if cover.sum() <= 0:  # a box thinner than a cell between cell edges: the cell holding its centre
        centre = (tb[:2] + tb[2:]) / 2
        inside = ((boxes[:, :2] <= centre) & (centre <= boxes[:, 2:])).all(-1)
        cover = inside.float()
    target[:-1] = cover / cover.sum()
    return target


def sub_cell_target(target_box: Tensor, candidates: Candidates, sub_cells: int) -> tuple[Tensor, Tensor]:
    """(weights [P], targets [P, sub_cells**2]) over the P image cells: a cell weighs the share of it the
    target box covers (the cell holding the box's centre, for a box between sub-cell edges), and its target
    is the share of each of its sub-cells the box covers, normalized."""
    P, k = candidates.num_patches, sub_cells
    cells = candidates.boxes[:P].float()
    size = (cells[:, 2:] - cells[:, :2]) / k
    lo = cells[:, None, :2] + _sub_cell_corners(k, cells.device)[None] * size[:, None]  # [P, S, 2]
    hi = lo + size[:, None]
    tb = target_box.to(cells)
    inter = (torch.minimum(hi, tb[2:]) - torch.maximum(lo, tb[:2])).clamp(min=0).prod(-1)  # [P, S]
    cover = inter / (size.prod(-1)[:, None]).clamp(min=1e-12)
    if cover.sum() <= 0:
        centre = (tb[:2] + tb[2:]) / 2
        cover = ((lo <= centre) & (centre < hi)).all(-1).float()
    weights = cover.mean(-1)
    targets = cover / cover.sum(-1, keepdim=True).clamp(min=1e-12)
    return weights, targets


def grounding_loss(logits: HeadLogits, target_boxes: list[Tensor | None], candidates: list[Candidates],
                   kinds: Tensor | None = None) -> tuple[Tensor, dict[str, float]]:
    """Cross-entropy of the pointer against pointer_target; where the target is inside its cells:
    KL divergence of the sub-cell pointer from sub_cell_target (sub-cell heads), else L1 of the
    in-cell offset at the cell holding the target's centre; cross-entropy of the action kind (when
    `kinds` [B] are given)."""
    B = logits.pointer.shape[0]
    if len(target_boxes) != B or len(candidates) != B:
        raise ValueError(f"need one target box (or None) and one Candidates per row; got {len(target_boxes)}, "
                         f"{len(candidates)} for batch {B}")
    log_p = F.log_softmax(logits.pointer, dim=-1)
    pointer_terms, offset_terms = [], []
    for b in range(B):
        n = candidates[b].boxes.shape[0]
        target = torch.zeros_like(log_p[b])
        target[: n] = pointer_target(target_boxes[b], candidates[b])[:-1]
        target[-1] = 1.0 if target_boxes[b] is None else 0.0
        pointer_terms.append(-(target * log_p[b].clamp(min=-1e4)).sum())
        if target_boxes[b] is not None and logits.sub is not None:
            k = int(round(logits.sub.shape[-1] ** 0.5))
            weights, targets = sub_cell_target(target_boxes[b], candidates[b], k)
            if weights.sum() > 0:
                log_sub = F.log_softmax(logits.sub[b, : len(weights)], dim=-1)
                targets = targets.to(log_sub)
                # KL, not cross-entropy: a cell the box covers whole wants every sub-cell alike, and that
                # is a perfect answer (0), not a floor of log(sub_cells**2)
                per_cell = (torch.xlogy(targets, targets) - targets * log_sub).sum(-1)
                offset_terms.append((weights.to(log_sub) * per_cell).sum() / weights.sum())
        elif target_boxes[b] is not None:
            boxes = candidates[b].boxes.to(logits.offset)
            tb = target_boxes[b].to(boxes)
            centre = (tb[:2] + tb[2:]) / 2
            inside = ((boxes[:, :2] <= centre) & (centre < boxes[:, 2:])).all(-1).nonzero()
            if len(inside):
                j = int(inside[0])
                size = boxes[j, 2:] - boxes[j, :2]
                want = ((centre - (boxes[j, :2] + boxes[j, 2:]) / 2) / size).clamp(-0.5, 0.5)
                offset_terms.append((logits.offset[b, j] - want).abs().sum())
    pointer_loss = torch.stack(pointer_terms).mean()
    unused = (logits.sub if logits.sub is not None else logits.offset).sum() * 0
    offset_loss = torch.stack(offset_terms).mean() if offset_terms else unused
    kind_loss = F.cross_entropy(logits.kind, kinds) if kinds is not None else logits.kind.sum() * 0
    total = pointer_loss + offset_loss + 0.2 * kind_loss
    return total, dict(pointer=pointer_loss.item(), offset=offset_loss.item(), kind=kind_loss.item())


# ---------------------------------------------------------------- weights file

def save_head(head: GroundingHead, path: str | Path) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = head.config.to_dict()
    tensors = {k: v.detach().contiguous().cpu() for k, v in head.state_dict().items()}
    save_file(tensors, str(path), metadata={"format": "pt", "vlagent_grounding_head": json.dumps(config)})
    return path


def load_head(path: str | Path, device="cpu", dtype: torch.dtype = torch.float32) -> GroundingHead:
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no grounding head file at {path}")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if "vlagent_grounding_head" not in meta:
            raise ValueError(f"{path} is not a grounding head file (no 'vlagent_grounding_head' metadata)")
        raw = json.loads(meta["vlagent_grounding_head"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    head = GroundingHead(GroundingHeadConfig.from_dict(raw))
    missing, unexpected = head.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: grounding head tensors do not match its config "
                         f"(missing {sorted(missing)}, unexpected {sorted(unexpected)})")
    return head.to(device=device, dtype=dtype).eval()


# ---------------------------------------------------------------- features from the engine

def screen_features(model, input_ids: Tensor, pixel_values: Tensor, image_grid_thw: Tensor,
                    attention_mask: Tensor | None = None) -> tuple[Tensor, Tensor, Candidates]:
    """Run the engine (no gradients: the backbone is frozen) on a prompt whose LAST image is the current
    screenshot; return the action hidden state [1,H] (the prompt's last token), that image's visual-token
    hidden states [1,N,H] and their Candidates (the merged-token grid). Batch 1."""
    if input_ids.dim() != 2 or input_ids.shape[0] != 1:
        raise ValueError(f"screen_features takes one prompt [1,T]; got {tuple(input_ids.shape)}")
    out = model(input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values,
                image_grid_thw=image_grid_thw, output_hidden_states=True)
    hidden = out.hidden_states[0]
    merge = model.config.vision.spatial_merge_size
    t, h, w = (int(v) for v in image_grid_thw[-1])
    rows, cols = h // merge, w // merge
    image_pos = (input_ids[0] == model.config.image_token_id).nonzero().flatten()
    if image_pos.numel() < rows * cols * t:
        raise ValueError(f"the prompt holds {image_pos.numel()} image tokens; its last image needs {rows * cols * t}")
    last = image_pos[-rows * cols:]  # the last temporal slice of the last image
    return hidden[-1][None], hidden[last][None], Candidates.patches(rows, cols, device=hidden.device)
