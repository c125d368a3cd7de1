"""Tiny random Qwen3.5 checkpoints in real Hugging Face format, for tests.

`make_tiny_checkpoint(dir, kind="dense"|"moe")` builds a small random
`Qwen3_5ForConditionalGeneration` / `Qwen3_5MoeForConditionalGeneration` with
transformers' own classes (fp32, seeded), `save_pretrained`s it, adds random `mtp.*`
tensors named as in the released Qwen3.5 checkpoints (transformers ignores them on
load), and writes a small byte-level BPE tokenizer with Qwen's special tokens and a
Qwen-style chat template into the same folder.

`tiny_checkpoint(kind, **kw)` returns a cached build (one per process and argument set),
so test modules can share checkpoints without rebuilding them.

`make_tool_call_checkpoint(dir, reply)` (cached: `tool_call_checkpoint`) is a dense one biased to
answer any chat prompt with a fixed text, e.g. a Qwen tool call.

Configs:
- dense: tied embeddings, 4 layers (3 Gated DeltaNet + 1 attention), equal key/value heads.
- moe: untied embeddings, grouped value heads (4 value heads per 2 key heads, value head
  dim 24 != key head dim 16), 8 experts top-2 with a shared expert, layer types mixed.
Both use interleaved M-RoPE with a scaled-down mrope_section (sums to rotary_dim / 2).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<tool_call>",
    "</tool_call>",
    "<think>",
    "</think>",
]

TEXT_VOCAB_SIZE = 1024  # model vocab (embedding rows); the tokenizer uses fewer

# Qwen3.5's chat template (the one its released checkpoints ship): thinking on by
# default ("<think>\n" after the assistant header; enable_thinking=False closes an
# empty think block), tools listed as JSON inside <tools>, tool calls in the XML
# <function=...><parameter=...> form, images/videos as vision_start + pad +
# vision_end (the processor expands each pad). Kept in sync by the vision/processor
# owner (model/processor.py renders prompts with it).
CHAT_TEMPLATE = r"""{%- set image_count = namespace(value=0) %}
{%- set video_count = namespace(value=0) %}
{%- macro render_content(content, do_vision_count, is_system_content=false) %}
    {%- if content is string %}
        {{- content }}
    {%- elif content is iterable and content is not mapping %}
        {%- for item in content %}
            {%- if 'image' in item or 'image_url' in item or item.type == 'image' %}
                {%- if is_system_content %}
                    {{- raise_exception('System message cannot contain images.') }}
                {%- endif %}
                {%- if do_vision_count %}
                    {%- set image_count.value = image_count.value + 1 %}
                {%- endif %}
                {%- if add_vision_id %}
                    {{- 'Picture ' ~ image_count.value ~ ': ' }}
                {%- endif %}
                {{- '<|vision_start|><|image_pad|><|vision_end|>' }}
            {%- elif 'video' in item or item.type == 'video' %}
                {%- if is_system_content %}
                    {{- raise_exception('System message cannot contain videos.') }}
                {%- endif %}
                {%- if do_vision_count %}
                    {%- set video_count.value = video_count.value + 1 %}
                {%- endif %}
                {%- if add_vision_id %}
                    {{- 'Video ' ~ video_count.value ~ ': ' }}
                {%- endif %}
                {{- '<|vision_start|><|video_pad|><|vision_end|>' }}
            {%- elif 'text' in item %}
                {{- item.text }}
            {%- else %}
                {{- raise_exception('Unexpected item type in content.') }}
            {%- endif %}
        {%- endfor %}
    {%- elif content is none or content is undefined %}
        {{- '' }}
    {%- else %}
        {{- raise_exception('Unexpected content type.') }}
    {%- endif %}
{%- endmacro %}
{%- if not messages %}
    {{- raise_exception('No messages provided.') }}
{%- endif %}
{%- if tools and tools is iterable and tools is not mapping %}
    {{- '<|im_start|>system\n' }}
    {{- "# Tools\n\nYou have access to the following functions:\n\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>" }}
    {{- '\n\nIf you choose to call a function ONLY reply in the following format with NO suffix:\n\n<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n<parameter=example_parameter_2>\nThis is the value for the second parameter\nthat can span\nmultiple lines\n</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n- Function calls MUST follow the specified format: an inner <function=...></function> block must be nested within <tool_call></tool_call> XML tags\n- Required parameters MUST be specified\n- You may provide optional reasoning for your function call in natural language BEFORE the function call, but NOT after\n- If there is no function call available, answer the question like normal with your current knowledge and do not tell the user about function calls\n</IMPORTANT>' }}
    {%- if messages[0].role == 'system' %}
        {%- set content = render_content(messages[0].content, false, true)|trim %}
        {%- if content %}
            {{- '\n\n' + content }}
        {%- endif %}
    {%- endif %}
    {{- '<|im_end|>\n' }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {%- set content = render_content(messages[0].content, false, true)|trim %}
        {{- '<|im_start|>system\n' + content + '<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" %}
        {%- set content = render_content(message.content, false)|trim %}
        {%- if not(content.startswith('<tool_response>') and content.endswith('</tool_response>')) %}
            {%- set ns.multi_step_tool = false %}
            {%- set ns.last_query_index = index %}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if ns.multi_step_tool %}
    {{- raise_exception('No user query found in messages.') }}
{%- endif %}
{%- for message in messages %}
    {%- set content = render_content(message.content, true)|trim %}
    {%- if message.role == "system" %}
        {%- if not loop.first %}
            {{- raise_exception('System message must be at the beginning.') }}
        {%- endif %}
    {%- elif message.role == "user" %}
        {{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in content %}
                {%- set reasoning_content = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
                {%- set content = content.split('</think>')[-1].lstrip('\n') %}
            {%- endif %}
        {%- endif %}
        {%- set reasoning_content = reasoning_content|trim %}
        {%- if (preserve_thinking is defined and preserve_thinking is true) or (loop.index0 > ns.last_query_index) %}
            {{- '<|im_start|>' + message.role + '\n<think>\n' + reasoning_content + '\n</think>\n\n' + content }}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\n' + content }}
        {%- endif %}
        {%- if message.tool_calls and message.tool_calls is iterable and message.tool_calls is not mapping %}
            {%- for tool_call in message.tool_calls %}
                {%- if tool_call.function is defined %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {%- if loop.first %}
                    {%- if content|trim %}
                        {{- '\n\n<tool_call>\n<function=' + tool_call.name + '>\n' }}
                    {%- else %}
                        {{- '<tool_call>\n<function=' + tool_call.name + '>\n' }}
                    {%- endif %}
                {%- else %}
                    {{- '\n<tool_call>\n<function=' + tool_call.name + '>\n' }}
                {%- endif %}
                {%- if tool_call.arguments is defined %}
                    {%- for args_name, args_value in tool_call.arguments|items %}
                        {{- '<parameter=' + args_name + '>\n' }}
                        {%- set args_value = args_value | string if args_value is string else args_value | tojson | safe %}
                        {{- args_value }}
                        {{- '\n</parameter>\n' }}
                    {%- endfor %}
                {%- endif %}
                {{- '</function>\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.previtem and loop.previtem.role != "tool" %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- content }}
        {{- '\n</tool_response>' }}
        {%- if not loop.last and loop.nextitem.role != "tool" %}
            {{- '<|im_end|>\n' }}
        {%- elif loop.last %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- else %}
        {{- raise_exception('Unexpected message role.') }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- else %}
        {{- '<think>\n' }}
    {%- endif %}
{%- endif %}"""

_CORPUS = """
The quick brown fox jumps over the lazy dog. Click the button at the top of the screen.
Type your name into the search box and press enter. Scroll down to see more results.
Open the settings menu, then select the display tab and change the brightness.
The agent looks at the screenshot and decides which action to take next.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 250 500 999 1000. Coordinates (120, 340) and [0.5, 0.25].
User: what is on the screen? Assistant: a window with a text field and two buttons.
click(x=100, y=200) type(text="hello world") scroll(direction="down", amount=3) done()
A video shows a person walking across the street; the car stops at the red light.
Hello, world! This is a test of the tokenizer. Tests must be small and fast.
""" * 4


def _dense_text(**over: Any) -> dict[str, Any]:
    cfg = dict(
        vocab_size=TEXT_VOCAB_SIZE,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,
        linear_conv_kernel_dim=4,
        linear_key_head_dim=16,
        linear_value_head_dim=16,
        linear_num_key_heads=4,
        linear_num_value_heads=4,
        layer_types=["linear_attention", "linear_attention", "linear_attention", "full_attention"],
        rope_parameters={
            "rope_type": "default",
            "rope_theta": 10000.0,
            "partial_rotary_factor": 0.25,  # rotary_dim = 8 -> 4 frequencies
            "mrope_section": [2, 1, 1],
            "mrope_interleaved": True,
        },
        max_position_embeddings=4096,
        rms_norm_eps=1e-6,
        initializer_range=0.08,
    )
    cfg.update(over)
    return cfg


def _moe_text(**over: Any) -> dict[str, Any]:
    cfg = _dense_text(
        num_hidden_layers=4,
        layer_types=["linear_attention", "full_attention", "linear_attention", "full_attention"],
        linear_num_key_heads=2,
        linear_num_value_heads=4,
        linear_key_head_dim=16,
        linear_value_head_dim=24,
        num_experts=8,
        num_experts_per_tok=2,
        moe_intermediate_size=32,
        shared_expert_intermediate_size=48,
    )
    cfg.pop("intermediate_size")
    cfg.update(over)
    return cfg


def _vision(**over: Any) -> dict[str, Any]:
    cfg = dict(
        depth=2,
        hidden_size=32,
        intermediate_size=64,
        num_heads=2,
        in_channels=3,
        patch_size=16,
        temporal_patch_size=2,
        spatial_merge_size=2,
        out_hidden_size=64,
        num_position_embeddings=64,
        initializer_range=0.08,
    )
    cfg.update(over)
    return cfg


def build_tokenizer(folder: Path, chat_template: str = CHAT_TEMPLATE):
    """Train a small byte-level BPE on a fixed corpus; special tokens get ids 0..10."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS.splitlines(), trainer=trainer)
    assert tok.get_vocab_size() <= TEXT_VOCAB_SIZE
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
    )
    fast.chat_template = chat_template
    fast.save_pretrained(folder)
    return fast


def _randomize_small_params(model: torch.nn.Module, gen: torch.Generator) -> None:
    """Give norm weights, dt_bias and conv kernels visible random values so a wrong
    convention (x*w vs x*(1+w), missing bias, ...) changes the output."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and (name.endswith("norm.weight") or name.endswith("layernorm.weight")):
                p.add_(torch.randn(p.shape, generator=gen) * 0.2)
            elif name.endswith("dt_bias"):
                p.add_(torch.randn(p.shape, generator=gen) * 0.5)
            elif name.endswith("conv1d.weight"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.4)


def _mtp_tensors(text: dict[str, Any], kind: str, gen: torch.Generator, std: float) -> dict[str, torch.Tensor]:
    """Random MTP weights in the released checkpoints' naming: fc over [embedding; hidden],
    two pre-fc norms, one full-attention decoder layer (mtp.layers.0.*), a final norm."""
    h = text["hidden_size"]
    nh, nkv, hd = text["num_attention_heads"], text["num_key_value_heads"], text["head_dim"]

    def rnd(*shape: int, scale: float = std) -> torch.Tensor:
        return torch.randn(shape, generator=gen) * scale

    t = {
        "mtp.fc.weight": rnd(h, 2 * h),
        "mtp.pre_fc_norm_embedding.weight": rnd(h, scale=0.2),
        "mtp.pre_fc_norm_hidden.weight": rnd(h, scale=0.2),
        "mtp.norm.weight": rnd(h, scale=0.2),
    }
    p = "mtp.layers.0."
    t.update(
        {
            p + "input_layernorm.weight": rnd(h, scale=0.2),
            p + "post_attention_layernorm.weight": rnd(h, scale=0.2),
            p + "self_attn.q_proj.weight": rnd(nh * hd * 2, h),
            p + "self_attn.k_proj.weight": rnd(nkv * hd, h),
            p + "self_attn.v_proj.weight": rnd(nkv * hd, h),
            p + "self_attn.o_proj.weight": rnd(h, nh * hd),
            p + "self_attn.q_norm.weight": rnd(hd, scale=0.2),
            p + "self_attn.k_norm.weight": rnd(hd, scale=0.2),
        }
    )
    if kind == "moe":
        e, inter, shared = text["num_experts"], text["moe_intermediate_size"], text["shared_expert_intermediate_size"]
        t[p + "mlp.gate.weight"] = rnd(e, h)
        for i in range(e):
            t[p + f"mlp.experts.{i}.gate_proj.weight"] = rnd(inter, h)
            t[p + f"mlp.experts.{i}.up_proj.weight"] = rnd(inter, h)
            t[p + f"mlp.experts.{i}.down_proj.weight"] = rnd(h, inter)
        t[p + "mlp.shared_expert.gate_proj.weight"] = rnd(shared, h)
        t[p + "mlp.shared_expert.up_proj.weight"] = rnd(shared, h)
        t[p + "mlp.shared_expert.down_proj.weight"] = rnd(h, shared)
        t[p + "mlp.shared_expert_gate.weight"] = rnd(1, h)
    else:
        inter = text["intermediate_size"]
        t[p + "mlp.gate_proj.weight"] = rnd(inter, h)
        t[p + "mlp.up_proj.weight"] = rnd(inter, h)
        t[p + "mlp.down_proj.weight"] = rnd(h, inter)
    return t


def _add_tensors(folder: Path, extra: dict[str, torch.Tensor]) -> None:
    """Append tensors to a saved checkpoint: a new shard listed in the index if the
    checkpoint is sharded, else a rewrite of model.safetensors."""
    from safetensors.torch import load_file, save_file

    index = folder / "model.safetensors.index.json"
    if index.exists():
        idx = json.loads(index.read_text())
        save_file(extra, folder / "model-mtp.safetensors", metadata={"format": "pt"})
        idx["weight_map"].update({k: "model-mtp.safetensors" for k in extra})
        index.write_text(json.dumps(idx, indent=2))
    else:
        single = folder / "model.safetensors"
        tensors = load_file(single)
        tensors.update(extra)
        save_file(tensors, single, metadata={"format": "pt"})


def make_tiny_checkpoint(
    folder: str | Path,
    kind: str = "dense",
    *,
    with_mtp: bool = True,
    tie_word_embeddings: bool | None = None,
    seed: int = 0,
    max_shard_size: str | int | None = None,
    eos_token_id: int | list[int] | None = None,
    text_overrides: dict[str, Any] | None = None,
    vision_overrides: dict[str, Any] | None = None,
    with_tokenizer: bool = True,
) -> Path:
    """Build and save a tiny random Qwen3.5 checkpoint into `folder`; return its path.

    kind: "dense" (default tied embeddings) or "moe" (default untied).
    eos_token_id: written to config + generation_config.json; None leaves no stop token.
    max_shard_size: e.g. "200KB" to get a sharded checkpoint with an index.
    """
    from transformers import (
        GenerationConfig,
        Qwen3_5Config,
        Qwen3_5ForConditionalGeneration,
        Qwen3_5MoeConfig,
        Qwen3_5MoeForConditionalGeneration,
    )

    if kind not in ("dense", "moe"):
        raise ValueError(f"kind must be 'dense' or 'moe', got {kind!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if tie_word_embeddings is None:
        tie_word_embeddings = kind == "dense"

    text = (_dense_text if kind == "dense" else _moe_text)(**(text_overrides or {}))
    text["tie_word_embeddings"] = tie_word_embeddings
    if eos_token_id is not None:
        text["eos_token_id"] = eos_token_id
    vision = _vision(**(vision_overrides or {}))
    ids = {t: SPECIAL_TOKENS.index(t) for t in SPECIAL_TOKENS}
    common = dict(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=tie_word_embeddings,
    )
    if kind == "dense":
        config, cls = Qwen3_5Config(**common), Qwen3_5ForConditionalGeneration
    else:
        config, cls = Qwen3_5MoeConfig(**common), Qwen3_5MoeForConditionalGeneration
    if eos_token_id is not None:
        config.eos_token_id = eos_token_id

    torch.manual_seed(seed)
    model = cls(config).float().eval()
    gen = torch.Generator().manual_seed(seed + 1)
    _randomize_small_params(model, gen)
    save_kw = {"max_shard_size": max_shard_size} if max_shard_size is not None else {}
    model.save_pretrained(folder, **save_kw)
    if eos_token_id is not None:
        GenerationConfig(eos_token_id=eos_token_id, do_sample=False).save_pretrained(folder)
    else:
        (folder / "generation_config.json").unlink(missing_ok=True)

    if with_mtp:
        _add_tensors(folder, _mtp_tensors(text, kind, gen, std=text["initializer_range"]))
        cfg = json.loads((folder / "config.json").read_text())
        cfg["text_config"]["mtp_num_hidden_layers"] = 1
        cfg["text_config"]["mtp_use_dedicated_embeddings"] = False
        (folder / "config.json").write_text(json.dumps(cfg, indent=2))
    if with_tokenizer:
        build_tokenizer(folder)
    return folder


def make_tool_call_checkpoint(folder: str | Path, reply: str, *, after: str = "</think>\n\n", seed: int = 0) -> Path:
    """A tiny dense checkpoint whose greedy answer to any prompt ending in `after` is `reply`, then
    <|im_end|>: a model that answers with a fixed tool call, so the code reading real replies runs.

    Each stretch of `reply` between special tokens (<tool_call>, ...) becomes one added token of the
    tokenizer, and the output is biased towards the chain (last token of `after`) -> reply's tokens
    -> <|im_end|>: each token of the chain gets a large embedding along a coordinate of its own, and
    the output row of the token after it a large weight on that coordinate (final-norm weight 0
    there, i.e. scale 1). The embedding dominates the residual stream at those positions, so the next
    token is the chain's whatever else the prompt holds, while every layer still runs on the whole
    prompt. Built from transformers' classes like the others.
    """
    import re

    from safetensors.torch import load_file, save_file

    folder = make_tiny_checkpoint(folder, "dense", tie_word_embeddings=False, with_mtp=False, seed=seed,
                                  with_tokenizer=False)
    tok = build_tokenizer(folder)
    special = "|".join(re.escape(t) for t in SPECIAL_TOKENS)
    tok.add_tokens([p for p in re.split(f"({special})", reply) if p and p not in SPECIAL_TOKENS])
    tok.save_pretrained(folder)
    reply_ids = tok.encode(reply, add_special_tokens=False)
    chain = [tok.encode(after, add_special_tokens=False)[-1], *reply_ids, tok.convert_tokens_to_ids("<|im_end|>")]
    if len(set(chain)) != len(chain) or tok.decode(reply_ids) != reply:
        raise ValueError(f"{reply!r} does not make a chain of distinct tokens: {chain}")
    tensors = load_file(folder / "model.safetensors")
    embed, head = tensors["model.language_model.embed_tokens.weight"], tensors["lm_head.weight"]
    norm = tensors["model.language_model.norm.weight"]
    if max(chain) >= embed.shape[0] or len(chain) > embed.shape[1]:
        raise ValueError("the chain does not fit the tiny model's vocabulary or hidden size")
    for k, (token, successor) in enumerate(zip(chain, chain[1:])):
        embed[token].zero_()
        embed[token, k] = 20.0
        head[successor, k] = 3.0
        norm[k] = 0.0  # Qwen3.5's norms scale by 1 + weight
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


_CACHE_ROOT: Path | None = None


def _cache_root() -> Path:
    global _CACHE_ROOT
    if _CACHE_ROOT is None:
        _CACHE_ROOT = Path(tempfile.mkdtemp(prefix="vlagent_tiny_ckpt_"))
        import atexit

        atexit.register(shutil.rmtree, _CACHE_ROOT, True)
    return _CACHE_ROOT


_BUILT: dict[str, Path] = {}


def tool_call_checkpoint(reply: str, **kw: Any) -> Path:
    """A cached `make_tool_call_checkpoint` (read-only, like `tiny_checkpoint`)."""
    key = json.dumps(["tool_call", reply, kw], sort_keys=True)
    if key not in _BUILT:
        _BUILT[key] = make_tool_call_checkpoint(_cache_root() / f"tool_call_{len(_BUILT)}", reply, **kw)
    return _BUILT[key]


def tiny_checkpoint(kind: str = "dense", **kw: Any) -> Path:
    """A cached `make_tiny_checkpoint(dir, kind, **kw)`: built once per process and arguments.
    Treat the folder as read-only (copy it before editing files in it)."""
    key = json.dumps([kind, kw], sort_keys=True, default=str)
    if key not in _BUILT:
        folder = _cache_root() / f"{kind}_{len(_BUILT)}"
        _BUILT[key] = make_tiny_checkpoint(folder, kind, **kw)
    return _BUILT[key]
