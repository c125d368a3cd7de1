"""Qwen3.5 (dense and MoE) in one file of plain modules: hybrid decoder, MTP head, top model.

Layout of one decoder layer (per config.layer_types):
    x = x + TokenMixer(rms_norm(x))      # Gated DeltaNet ("linear_attention") or gated attention
    x = x + MLP(rms_norm(x))             # SwiGLU, or MoE with a sigmoid-gated shared expert
All RMSNorms are zero-centred (x_hat * (1 + w)) except the gated one inside DeltaNet (x_hat * w * silu(z)).

Projections that read the same input are stored fused (q|k|v, DeltaNet qkv|z|b|a, gate|up) so
decode does one matrix-vector product per input; the loader writes checkpoint tensors straight
into their slices. The numerical ops come from vlagent.kernels (one dispatch point per op,
Triton on GPU, PyTorch on CPU).

Caches are preallocated (`Cache`): per attention layer a KV buffer sized prompt + max new
tokens; per DeltaNet layer the conv window [B, conv_dim, W-1] and the fp32 recurrent state
[B, HV, K, V]. Left padding is supported: pad positions are zeroed before DeltaNet (a zero
input leaves a zero state unchanged, so a padded row equals the row alone) and masked as keys
in attention.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlagent import kernels as K

from .config import ModelConfig, TextConfig


def _param(*shape: int, dtype: torch.dtype, device: torch.device | str | None) -> nn.Parameter:
    # Uninitialised on purpose: every parameter is filled by the loader.
    return nn.Parameter(torch.empty(*shape, dtype=dtype, device=device), requires_grad=False)


# ------------------------------------------------------------------------------------ cache


@dataclass
class Cache:
    """Preallocated decoding state for one batch.

    kv[i] = (k, v) [B, n_kv, max_len, head_dim]; conv[i] [B, conv_dim, W-1]; rec[i] [B, HV, K, V]
    fp32. key_valid [B, max_len] marks real (non-pad) tokens; `length` tokens are written;
    next_pos [B] is each row's next rotary position (text tokens after the last position used).
    During speculative verification the DeltaNet layers keep per-token states in `pending`
    until `commit(n)` keeps the first n tokens.
    """

    batch: int
    max_len: int
    kv: dict[int, tuple[Tensor, Tensor]] = field(default_factory=dict)
    conv: dict[int, Tensor] = field(default_factory=dict)
    rec: dict[int, Tensor] = field(default_factory=dict)
    key_valid: Tensor | None = None
    length: int = 0
    next_pos: Tensor | None = None
    pending: dict[int, tuple[Tensor, Tensor]] = field(default_factory=dict)
    keep_per_token_states: bool = False
    resets: int = 0  # times emptied for reuse (cuda_decode.DecodeGraphs); a PromptCache checks it

    @classmethod
    def allocate(
        cls, cfg: TextConfig, layer_types: list[str], batch: int, max_len: int, dtype: torch.dtype, device
    ) -> "Cache":
        c = cls(batch=batch, max_len=max_len)
        conv_dim = 2 * cfg.linear_key_dim + cfg.linear_value_dim
        for i, kind in enumerate(layer_types):
            if kind == "full_attention":
                shape = (batch, cfg.num_key_value_heads, max_len, cfg.head_dim)
                c.kv[i] = (torch.zeros(shape, dtype=dtype, device=device), torch.zeros(shape, dtype=dtype, device=device))
            else:
                c.conv[i] = torch.zeros(batch, conv_dim, cfg.linear_conv_kernel_dim - 1, dtype=dtype, device=device)
                c.rec[i] = torch.zeros(
                    batch, cfg.linear_num_value_heads, cfg.linear_key_head_dim, cfg.linear_value_head_dim,
                    dtype=torch.float32, device=device,
                )
        c.key_valid = torch.zeros(batch, max_len, dtype=torch.bool, device=device)
        c.next_pos = torch.zeros(batch, dtype=torch.long, device=device)
        return c

    def commit(self, n: int) -> None:
        """After a speculative verify of T tokens: keep the states after the first n of them."""
        for i, (conv_states, rec_states) in self.pending.items():
            self.conv[i].copy_(conv_states[n - 1])
            self.rec[i].copy_(rec_states[n - 1])
        self.pending.clear()


# ------------------------------------------------------------------------------------ layers


class RMSNorm(nn.Module):
    """Zero-centred RMSNorm: x_hat * (1 + w)."""

    def __init__(self, dim: int, eps: float, dtype, device, backend: str = "auto"):
        super().__init__()
        self.weight = _param(dim, dtype=dtype, device=device)
        self.eps = eps
        self.backend = backend

    def forward(self, x: Tensor) -> Tensor:
        return K.rms_norm(x, self.weight, self.eps, zero_centered=True, backend=self.backend)


class GatedDeltaNet(nn.Module):
    """Linear-attention token mixer: fused in-projection, causal depthwise conv + SiLU,
    L2-normalised q/k, gated delta rule (chunked for prompts, recurrent for decode),
    gated RMSNorm, out-projection. Value heads may outnumber q/k heads (grouped)."""

    def __init__(self, cfg: TextConfig, layer_idx: int, dtype, device, backend: str = "auto"):
        super().__init__()
        self.layer_idx = layer_idx
        self.backend = backend
        self.nk, self.nv = cfg.linear_num_key_heads, cfg.linear_num_value_heads
        self.dk, self.dv = cfg.linear_key_head_dim, cfg.linear_value_head_dim
        self.key_dim, self.value_dim = cfg.linear_key_dim, cfg.linear_value_dim
        self.conv_dim = 2 * self.key_dim + self.value_dim
        self.width = cfg.linear_conv_kernel_dim
        self.eps = cfg.rms_norm_eps
        h = cfg.hidden_size
        # rows: [q | k | v] (conv input) | z (output gate) | b (beta) | a (decay)
        self.in_proj = _param(self.conv_dim + self.value_dim + 2 * self.nv, h, dtype=dtype, device=device)
        self.conv_weight = _param(self.conv_dim, self.width, dtype=dtype, device=device)
        self.A_log = _param(self.nv, dtype=dtype, device=device)
        self.dt_bias = _param(self.nv, dtype=dtype, device=device)
        self.norm_weight = _param(self.dv, dtype=dtype, device=device)
        self.out_proj = _param(h, self.value_dim, dtype=dtype, device=device)

    def _split(self, proj: Tensor):
        c, v, n = self.conv_dim, self.value_dim, self.nv
        return proj[..., :c], proj[..., c : c + v], proj[..., c + v : c + v + n], proj[..., c + v + n :]

    def _qkv(self, mixed: Tensor):
        lead = mixed.shape[:-1]
        q = mixed[..., : self.key_dim].reshape(*lead, self.nk, self.dk)
        k = mixed[..., self.key_dim : 2 * self.key_dim].reshape(*lead, self.nk, self.dk)
        v = mixed[..., 2 * self.key_dim :].reshape(*lead, self.nv, self.dv)
        return q, k, v

    def forward(self, x: Tensor, cache: Cache, token_mask: Tensor | None) -> Tensor:
        B, T, _ = x.shape
        i = self.layer_idx
        if token_mask is not None:  # pad steps: zero input -> state untouched
            x = x * token_mask[..., None].to(x.dtype)
        mixed, z, b, a = self._split(K.linear(x, self.in_proj, backend=self.backend))
        if T == 1 and not cache.keep_per_token_states:
            conv_out = K.causal_conv1d_update(
                mixed[:, 0], cache.conv[i], self.conv_weight, None, "silu", backend=self.backend
            )
            q, k, v = self._qkv(conv_out)
            o = K.gated_delta_decode_step(
                q, k, v, a[:, 0], b[:, 0], self.A_log, self.dt_bias, cache.rec[i], backend=self.backend
            )[:, None]
        else:
            conv_out, conv_state = K.causal_conv1d(
                mixed, self.conv_weight, None, "silu", initial_state=cache.conv[i], backend=self.backend
            )
            q, k, v = self._qkv(conv_out)
            if cache.keep_per_token_states:
                o = self._verify(mixed, q, k, v, a, b, cache)
            else:
                cache.conv[i].copy_(conv_state)
                beta = b.sigmoid()
                g = -self.A_log.float().exp() * F.softplus(a.float() + self.dt_bias.float())
                o, state = K.chunk_gated_delta_rule(
                    q, k, v, g, beta, initial_state=cache.rec[i], output_final_state=True,
                    use_qk_l2norm_in_kernel=True, backend=self.backend,
                )
                cache.rec[i].copy_(state)
        o = K.gated_rms_norm(o, z.reshape(B, T, self.nv, self.dv), self.norm_weight, self.eps, backend=self.backend)
        return K.linear(o.reshape(B, T, self.value_dim), self.out_proj, backend=self.backend)

    def _verify(self, mixed, q, k, v, a, b, cache: Cache) -> Tensor:
        """Token-by-token recurrence keeping the state after every token, so a speculative
        verify can roll back to any accepted prefix (Cache.commit)."""
        i, T = self.layer_idx, mixed.shape[1]
        window = torch.cat([cache.conv[i], mixed.transpose(1, 2)], dim=-1)  # [B, conv_dim, W-1+T]
        conv_states = torch.stack([window[:, :, t + 1 : t + self.width] for t in range(T)])
        state = cache.rec[i].clone()
        outs, states = [], []
        for t in range(T):
            outs.append(
                K.gated_delta_decode_step(
                    q[:, t], k[:, t], v[:, t], a[:, t], b[:, t], self.A_log, self.dt_bias, state, backend=self.backend
                )
            )
            states.append(state.clone())
        cache.pending[i] = (conv_states, torch.stack(states))
        return torch.stack(outs, dim=1)


class Attention(nn.Module):
    """Gated full attention: q (+ sigmoid output gate), per-head q/k RMSNorm, partial M-RoPE, GQA."""

    def __init__(self, cfg: TextConfig, layer_idx: int, dtype, device, backend: str = "auto"):
        super().__init__()
        self.layer_idx = layer_idx
        self.backend = backend
        self.nh, self.nkv, self.hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        self.eps = cfg.rms_norm_eps
        h = cfg.hidden_size
        # rows: per head [query | gate] interleaved exactly as HF's q_proj, then k, then v
        self.q_size, self.kv_size = 2 * self.nh * self.hd, self.nkv * self.hd
        self.qkv_proj = _param(self.q_size + 2 * self.kv_size, h, dtype=dtype, device=device)
        self.qkv_bias = _param(self.q_size + 2 * self.kv_size, dtype=dtype, device=device) if cfg.attention_bias else None
        self.o_proj = _param(h, self.nh * self.hd, dtype=dtype, device=device)
        self.o_bias = _param(h, dtype=dtype, device=device) if cfg.attention_bias else None
        self.q_norm = _param(self.hd, dtype=dtype, device=device)
        self.k_norm = _param(self.hd, dtype=dtype, device=device)
        self.cache_index = layer_idx  # key into Cache.kv (the MTP layer uses its own cache)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, cache: Cache, mask: Tensor | None) -> Tensor:
        B, T, _ = x.shape
        proj = K.linear(x, self.qkv_proj, self.qkv_bias, backend=self.backend)
        qg = proj[..., : self.q_size].view(B, T, self.nh, 2 * self.hd)
        q, gate = qg[..., : self.hd], qg[..., self.hd :]
        k = proj[..., self.q_size : self.q_size + self.kv_size].view(B, T, self.nkv, self.hd)
        v = proj[..., self.q_size + self.kv_size :].view(B, T, self.nkv, self.hd)
        q = K.rms_norm(q, self.q_norm, self.eps, zero_centered=True, backend=self.backend)
        k = K.rms_norm(k, self.k_norm, self.eps, zero_centered=True, backend=self.backend)
        q, k = K.apply_rotary(q, k, cos.to(q.dtype), sin.to(q.dtype), backend=self.backend)

        start = cache.length
        end = start + T
        k_cache, v_cache = cache.kv[self.cache_index]
        k_cache[:, :, start:end] = k.transpose(1, 2)
        v_cache[:, :, start:end] = v.transpose(1, 2)
        causal = isinstance(mask, str)  # "causal": fresh cache, no pads -> the fast causal path
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), k_cache[:, :, :end], v_cache[:, :, :end],
            attn_mask=None if causal else mask, is_causal=causal, scale=self.hd**-0.5,
            enable_gqa=self.nh != self.nkv,
        )
        out = out.transpose(1, 2).reshape(B, T, self.nh * self.hd)
        out = out * torch.sigmoid(gate.reshape(B, T, self.nh * self.hd))
        return K.linear(out, self.o_proj, self.o_bias, backend=self.backend)


class MLP(nn.Module):
    """SwiGLU with fused gate|up rows."""

    def __init__(self, hidden: int, inter: int, dtype, device, backend: str = "auto"):
        super().__init__()
        self.inter = inter
        self.backend = backend
        self.gate_up = _param(2 * inter, hidden, dtype=dtype, device=device)
        self.down = _param(hidden, inter, dtype=dtype, device=device)

    def forward(self, x: Tensor) -> Tensor:
        gate, up = K.linear(x, self.gate_up, backend=self.backend).split(self.inter, dim=-1)
        return K.linear(F.silu(gate) * up, self.down, backend=self.backend)


class MoE(nn.Module):
    """Softmax top-k router (renormalised), SwiGLU experts, sigmoid-gated shared expert."""

    def __init__(self, cfg: TextConfig, dtype, device, backend: str = "auto"):
        super().__init__()
        h, e, i, s = cfg.hidden_size, cfg.num_experts, cfg.moe_intermediate_size, cfg.shared_expert_intermediate_size
        self.top_k = cfg.num_experts_per_tok
        self.renormalize = cfg.norm_topk_prob
        self.backend = backend
        self.router = _param(e, h, dtype=dtype, device=device)
        self.w_gate_up = _param(e, 2 * i, h, dtype=dtype, device=device)
        self.w_down = _param(e, h, i, dtype=dtype, device=device)
        self.has_shared = s > 0
        if self.has_shared:
            self.shared_gate_up = _param(2 * s, h, dtype=dtype, device=device)
            self.shared_down = _param(h, s, dtype=dtype, device=device)
            self.shared_gate = _param(1, h, dtype=dtype, device=device)

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape
        y = K.fused_moe(
            x.reshape(-1, shape[-1]), self.router, self.w_gate_up, self.w_down, self.top_k,
            renormalize=self.renormalize,
            shared_gate_up=self.shared_gate_up if self.has_shared else None,
            shared_down=self.shared_down if self.has_shared else None,
            shared_gate_weight=self.shared_gate if self.has_shared else None,
            backend=self.backend,
        )
        return y.view(shape)


class DecoderLayer(nn.Module):
    def __init__(self, cfg: TextConfig, layer_idx: int, kind: str, dtype, device, backend: str = "auto"):
        super().__init__()
        self.kind = kind
        self.input_norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, dtype, device, backend)
        self.post_norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, dtype, device, backend)
        if kind == "linear_attention":
            self.mixer: nn.Module = GatedDeltaNet(cfg, layer_idx, dtype, device, backend)
        else:
            self.mixer = Attention(cfg, layer_idx, dtype, device, backend)
        if cfg.is_moe:
            self.mlp: nn.Module = MoE(cfg, dtype, device, backend)
        else:
            self.mlp = MLP(cfg.hidden_size, cfg.intermediate_size, dtype, device, backend)

    def forward(self, x, cos, sin, cache: Cache, attn_mask, token_mask) -> Tensor:
        h = self.input_norm(x)
        if self.kind == "linear_attention":
            h = self.mixer(h, cache, token_mask)
        else:
            h = self.mixer(h, cos, sin, cache, attn_mask)
        x = x + h
        return x + self.mlp(self.post_norm(x))


class MTP(nn.Module):
    """Multi-token prediction head (released Qwen3.5 checkpoints' `mtp.*`): combines the main
    model's final hidden state at position t with the embedding of token t+1 and predicts
    token t+2 through one full-attention decoder layer and the shared LM head."""

    def __init__(self, cfg: TextConfig, n_layers: int, dtype, device, backend: str = "auto"):
        super().__init__()
        h = cfg.hidden_size
        self.pre_fc_norm_embedding = RMSNorm(h, cfg.rms_norm_eps, dtype, device, backend)
        self.pre_fc_norm_hidden = RMSNorm(h, cfg.rms_norm_eps, dtype, device, backend)
        self.fc = _param(h, 2 * h, dtype=dtype, device=device)
        # cache slots: the MTP layers use Cache.kv keys -1, -2, ... of their own cache
        self.layers = nn.ModuleList(
            DecoderLayer(cfg, -1 - j, "full_attention", dtype, device, backend) for j in range(n_layers)
        )
        self.norm = RMSNorm(h, cfg.rms_norm_eps, dtype, device, backend)

    def forward(self, hidden: Tensor, token_embeds: Tensor, cos, sin, cache: Cache, attn_mask, step: int = 0):
        x = torch.cat([self.pre_fc_norm_embedding(token_embeds), self.pre_fc_norm_hidden(hidden)], dim=-1)
        x = K.linear(x, self.fc)
        x = self.layers[step % len(self.layers)](x, cos, sin, cache, attn_mask, None)
        return self.norm(x)


# ------------------------------------------------------------------------------------ top model


@dataclass
class ModelOutput:
    logits: Tensor  # [B, T, vocab] (or [B, 1, vocab] when only the last position was asked for)
    hidden_states: Tensor | None = None  # final-norm hidden states [B, T, hidden]


class Qwen35ForConditionalGeneration(nn.Module):
    """Vision tower + hybrid decoder + LM head (+ MTP). Inputs mirror transformers'
    Qwen3_5ForConditionalGeneration.forward; `generate` lives in generate.py."""

    def __init__(self, config: ModelConfig, *, dtype=torch.float32, device="cpu", backend: str = "auto",
                 with_mtp: bool | None = None, with_vision: bool = True):
        super().__init__()
        self.config = config
        self.backend = backend
        tc = config.text
        self.embed_tokens = _param(tc.vocab_size, tc.hidden_size, dtype=dtype, device=device)
        self.layers = nn.ModuleList(
            DecoderLayer(tc, i, kind, dtype, device, backend) for i, kind in enumerate(tc.layer_types)
        )
        self.norm = RMSNorm(tc.hidden_size, tc.rms_norm_eps, dtype, device, backend)
        self.lm_head = None if config.tie_word_embeddings else _param(tc.vocab_size, tc.hidden_size, dtype=dtype, device=device)
        n_mtp = tc.mtp_num_hidden_layers if with_mtp is None else (max(tc.mtp_num_hidden_layers, 1) if with_mtp else 0)
        self.mtp = MTP(tc, n_mtp, dtype, device, backend) if n_mtp > 0 else None
        self.visual = _build_vision_tower(config, dtype, device) if with_vision else None
        inv = 1.0 / (tc.rope_theta ** (torch.arange(0, tc.rotary_dim, 2, dtype=torch.float32) / tc.rotary_dim))
        self.register_buffer("inv_freq", inv.to(device), persistent=False)
        self.path = None  # set by load_model; lets generate() find the tokenizer for stop strings
        self._tokenizer = None
        self.generation_stats: dict | None = None

    # -- basic pieces ------------------------------------------------------------------

    @property
    def dtype(self) -> torch.dtype:
        return self.embed_tokens.dtype

    @property
    def device(self) -> torch.device:
        return self.embed_tokens.device

    @property
    def head_weight(self) -> Tensor:
        return self.embed_tokens if self.lm_head is None else self.lm_head

    def logits(self, hidden: Tensor) -> Tensor:
        with K.matvec_mode(hidden.device, hidden.numel() == hidden.shape[-1]):
            return K.linear(hidden, self.head_weight, backend=self.backend)

    def new_cache(self, batch: int, max_len: int) -> Cache:
        tc = self.config.text
        cache = Cache.allocate(tc, tc.layer_types, batch, max_len, self.dtype, self.device)
        return cache

    def new_mtp_cache(self, batch: int, max_len: int) -> Cache:
        tc = self.config.text
        cache = Cache(batch=batch, max_len=max_len)
        shape = (batch, tc.num_key_value_heads, max_len, tc.head_dim)
        for layer in self.mtp.layers:
            idx = layer.mixer.cache_index
            cache.kv[idx] = (torch.zeros(shape, dtype=self.dtype, device=self.device),
                             torch.zeros(shape, dtype=self.dtype, device=self.device))
        cache.key_valid = torch.zeros(batch, max_len, dtype=torch.bool, device=self.device)
        return cache

    def rotary(self, position_ids: Tensor) -> tuple[Tensor, Tensor]:
        tc = self.config.text
        return K.mrope_cos_sin(position_ids, self.inv_freq, tc.mrope_section, tc.mrope_interleaved)

    @staticmethod
    def attention_mask(cache: Cache, T: int) -> Tensor | str | None:
        """Bool [B, 1, T, length+T]: causal over the cache, pad keys hidden (a pad query
        still sees itself so no row is empty). None when nothing needs masking (T == 1, no
        pads); "causal" for a pad-free prompt on an empty cache."""
        start, end = cache.length, cache.length + T
        valid = cache.key_valid[:, :end]
        if bool(valid.all()):
            if T == 1:
                return None
            if start == 0:
                return "causal"
        q_pos = torch.arange(start, end, device=valid.device)[:, None]
        k_pos = torch.arange(end, device=valid.device)[None, :]
        causal = k_pos <= q_pos
        mask = causal[None] & (valid[:, None, :] | (k_pos == q_pos)[None])
        return mask[:, None]

    # -- multimodal embedding -----------------------------------------------------------

    def embed(self, input_ids: Tensor, pixel_values=None, image_grid_thw=None,
              pixel_values_videos=None, video_grid_thw=None, image_embeds: Tensor | None = None) -> Tensor:
        """Token embeddings with image/video features scattered over their placeholder tokens.

        image_embeds: the vision tower's features for the images, already computed (in order,
        one row per <image pad> token); used instead of running the tower on pixel_values."""
        x = F.embedding(input_ids, self.embed_tokens)
        for name, pixels, grid, token_id, given in (
            ("image", pixel_values, image_grid_thw, self.config.image_token_id, image_embeds),
            ("video", pixel_values_videos, video_grid_thw, self.config.video_token_id, None),
        ):
            if given is not None:
                feats = given.to(self.device, x.dtype)
                source = f"given {name} features"
            elif pixels is not None:
                if grid is None:
                    raise ValueError(f"{name} pixels were given without {name}_grid_thw")
                if self.visual is None:
                    raise RuntimeError(f"{name} inputs were given but this model has no vision tower loaded")
                feats = self.visual(pixels.to(self.device, self.dtype), grid.to(self.device)).to(x.dtype)
                source = f"{name}_grid_thw {grid.tolist()}"
            else:
                continue
            slots = input_ids == token_id
            n_tokens = int(slots.sum())
            if n_tokens != feats.shape[0]:
                raise ValueError(
                    f"{name} features and {name} tokens do not match: {feats.shape[0]} features from "
                    f"{source} but {n_tokens} <{name} pad> tokens in input_ids"
                )
            x = x.masked_scatter(slots[..., None], feats)
        return x

    def position_ids(self, input_ids: Tensor, attention_mask: Tensor | None, image_grid_thw=None,
                     video_grid_thw=None) -> Tensor:
        """[3, B, L] M-RoPE positions; text-only: per-row count of real tokens (pads get 0)."""
        if image_grid_thw is not None or video_grid_thw is not None:
            from .positions import get_rope_index

            pos, _ = get_rope_index(input_ids, image_grid_thw, video_grid_thw, attention_mask, config=self.config)
            return pos.to(input_ids.device)
        if attention_mask is None:
            pos = torch.arange(input_ids.shape[1], device=input_ids.device).expand(input_ids.shape[0], -1)
        else:
            pos = (attention_mask.long().cumsum(-1) - 1).clamp_min(0)
        return pos[None].expand(3, -1, -1)

    # -- decoder ------------------------------------------------------------------------

    def decode_hidden(self, x: Tensor, position_ids: Tensor, cache: Cache, token_mask: Tensor | None = None) -> Tensor:
        """Run the decoder on embeddings x [B, T, H] appended to `cache`; returns final-norm hidden."""
        B, T, _ = x.shape
        if cache.length + T > cache.max_len:
            raise ValueError(f"cache holds {cache.max_len} tokens; cannot append {T} to {cache.length}")
        valid = torch.ones(B, T, dtype=torch.bool, device=x.device) if token_mask is None else token_mask.bool()
        cache.key_valid[:, cache.length : cache.length + T] = valid
        cos, sin = self.rotary(position_ids)
        attn_mask = self.attention_mask(cache, T)
        tm = None if token_mask is None or bool(valid.all()) else valid
        # FTZ/DAZ: strongly decaying DeltaNet heads make subnormals, ~30x slower on Intel (kernels/denormals.py)
        with K.matvec_mode(x.device, B * T == 1), K.flush_denormals(x.device):
            for layer in self.layers:
                x = layer(x, cos, sin, cache, attn_mask, tm)
        cache.length += T
        last = position_ids.amax(dim=(0, 2)) + 1
        cache.next_pos = last if cache.length == T else torch.maximum(cache.next_pos, last)
        return self.norm(x)

    def mtp_hidden(self, hidden: Tensor, next_tokens: Tensor, position_ids: Tensor, cache: Cache) -> Tensor:
        """MTP over T positions: main final-norm hidden at t [B,T,H] + token t+1 [B,T] -> MTP
        hidden [B,T,H] (its logits predict token t+2), appended to the MTP `cache`."""
        if self.mtp is None:
            raise RuntimeError("this checkpoint has no MTP head (no mtp.* tensors were loaded)")
        B, T, _ = hidden.shape
        cache.key_valid[:, cache.length : cache.length + T] = True
        cos, sin = self.rotary(position_ids)
        out = self.mtp(hidden, F.embedding(next_tokens, self.embed_tokens), cos, sin, cache,
                       self.attention_mask(cache, T))
        cache.length += T
        return out

    @torch.no_grad()  # not inference_mode: callers may feed the hidden states to a trainable head
    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, pixel_values: Tensor | None = None,
                image_grid_thw: Tensor | None = None, pixel_values_videos: Tensor | None = None,
                video_grid_thw: Tensor | None = None, position_ids: Tensor | None = None,
                output_hidden_states: bool = False, **unused) -> ModelOutput:
        """Full forward over a (left-padded) batch; logits for every position, like transformers."""
        input_ids = input_ids.to(self.device)
        if attention_mask is not None:
            attention_mask = attention_mask.to(self.device)
        x = self.embed(input_ids, pixel_values, image_grid_thw, pixel_values_videos, video_grid_thw)
        if position_ids is None:
            position_ids = self.position_ids(input_ids, attention_mask, image_grid_thw, video_grid_thw)
        elif position_ids.dim() == 2:
            position_ids = position_ids[None].expand(3, -1, -1)
        cache = self.new_cache(input_ids.shape[0], input_ids.shape[1])
        hidden = self.decode_hidden(x, position_ids.to(self.device), cache, attention_mask)
        return ModelOutput(logits=self.logits(hidden), hidden_states=hidden if output_hidden_states else None)

    def generate(self, input_ids: Tensor, **kwargs):
        """See vlagent.model.generate.generate (returns prompt + new tokens, like transformers)."""
        from .generate import generate

        return generate(self, input_ids, **kwargs)

    @property
    def tokenizer(self):
        """The checkpoint's tokenizer (loaded on first use, from the folder load_model read)."""
        if self._tokenizer is None:
            if self.path is None:
                raise RuntimeError("this model was not loaded from a folder; pass tokenizer= explicitly")
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.path)
        return self._tokenizer


def _build_vision_tower(config: ModelConfig, dtype, device) -> nn.Module | None:
    """The vision helper's VisionTower (model/vision.py), built without random init.

    Parameters are created in fp32 (its buffers, e.g. rotary frequencies, are computed in
    fp32 at construction) and converted parameter by parameter to `dtype`."""
    try:
        from .vision import VisionTower
    except ImportError:
        return None
    with _skip_init(), torch.device(device):
        tower = VisionTower(config.vision)
    for module in tower.modules():
        for name, p in list(module.named_parameters(recurse=False)):
            setattr(module, name, nn.Parameter(p.detach().to(dtype), requires_grad=False))
    return tower.eval()


class _skip_init:
    """Make nn.init.* and reset_parameters no-ops while modules are built (weights are loaded later)."""

    _names = ("uniform_", "normal_", "trunc_normal_", "kaiming_uniform_", "kaiming_normal_",
              "xavier_uniform_", "xavier_normal_", "zeros_", "ones_", "constant_")

    def __enter__(self):
        self.saved = {n: getattr(nn.init, n) for n in self._names}
        for n in self._names:
            setattr(nn.init, n, lambda t, *a, **k: t)
        self.saved_reset = {}
        for cls in (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding, nn.LayerNorm):
            self.saved_reset[cls] = cls.reset_parameters
            cls.reset_parameters = lambda self: None
        return self

    def __exit__(self, *exc):
        for n, f in self.saved.items():
            setattr(nn.init, n, f)
        for cls, f in self.saved_reset.items():
            cls.reset_parameters = f
        return False
