"""Grounders and the `--grounder SPEC` strings that name them.

SPEC is `NAME[:ARG][,KEY=VALUE...]`:

    center                                   the centre of the screen (the floor)
    ocr  (or ocr-match)[,threshold=0.6]      OCR + fuzzy text match, no learning
    api:MODEL[@BASE_URL][,fmt=qwen,...]      a served model's tool-call point (OpenAIPolicy);
                                             BASE_URL defaults to $VLAGENT_API_BASE
    local:CHECKPOINT[,head=FILE,device=cpu,...]
                                             the local engine with a grounding head trained on it
                                             (`train-grounding --base`; CHECKPOINT/grounding_head.safetensors
                                             is found without head=), else its tool-call point (LocalPolicy)
    grounder:FOLDER[,threshold=T]            a grounder trained by `vlagent train-grounding` (default T: its calibrated one);
                                             text_first=0: no answer from written text or the lexicon; snap=0: no snapping
                                             onto the field, checkbox or slider named (.controls);
                                             icons=0: no icon search by look (.icon_finder, .icon_recognizer);
                                             places=0: no counting of "the third option" (.ordinals) or of
                                             keyboard keys (.keyboard)
    default[,threshold=...]                  the best offline grounder of this install: the trained one
                                             shipped in the package, else ocr-match

KEY=VALUE options are passed to the grounder's (or policy's) constructor;
numbers are converted. A new grounder (the grounding head of the next issue)
registers a factory in `GROUNDER_FACTORIES`: name -> callable(arg, options)
returning an object with `name` and `ground(image, instruction, platform=)`.
"""

from __future__ import annotations

import os
import re
from typing import Any, Callable

from vlagent.grounding.grounders.base import Candidate, Grounder, GroundingResult
from vlagent.grounding.grounders.center import CenterGrounder
from vlagent.grounding.grounders.ocr_match import OcrMatchGrounder


class GrounderSpecError(ValueError):
    """A --grounder string that names no grounder or has bad options."""


def _value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def parse_spec(spec: str) -> tuple[str, str | None, dict[str, Any]]:
    """'api:m@http://h:1/v1,fmt=qwen' -> ('api', 'm@http://h:1/v1', {'fmt': 'qwen'})."""
    head, _, rest = spec.partition(",")
    name, sep, arg = head.partition(":")
    options: dict[str, Any] = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise GrounderSpecError(f"grounder option {part!r} in {spec!r} is not KEY=VALUE")
        options[key.strip().replace("-", "_")] = _value(value.strip())
    return name.strip().lower(), (arg.strip() or None) if sep else None, options


def _center(arg: str | None, options: dict[str, Any]) -> Grounder:
    if arg or options:
        raise GrounderSpecError("center takes no argument or options")
    return CenterGrounder()


def _ocr(arg: str | None, options: dict[str, Any]) -> Grounder:
    if arg:
        raise GrounderSpecError("ocr takes options only, e.g. ocr,threshold=0.5")
    return OcrMatchGrounder(**options)


def _api(arg: str | None, options: dict[str, Any]) -> Grounder:
    from vlagent.grounding.grounders.policy_grounder import PolicyGrounder
    from vlagent.policy.openai_policy import OpenAIPolicy

    model, at, base = (arg or "").partition("@")
    model = model or os.environ.get("VLAGENT_MODEL", "")
    base_url = base if at else os.environ.get("VLAGENT_API_BASE")
    if not model:
        raise GrounderSpecError("api needs a model: api:MODEL[@BASE_URL] (or $VLAGENT_MODEL)")
    if not base_url:
        raise GrounderSpecError("api needs a server: api:MODEL@BASE_URL (or $VLAGENT_API_BASE)")
    policy = OpenAIPolicy(model, base_url=base_url, **options)
    return PolicyGrounder(policy, name=f"api:{model}")


def _local(arg: str | None, options: dict[str, Any]) -> Grounder:
    from vlagent.grounding.grounders.checkpoint_head import CheckpointHeadGrounder, head_file_for
    from vlagent.grounding.grounders.policy_grounder import PolicyGrounder
    from vlagent.policy.local import LocalPolicy

    if not arg:
        raise GrounderSpecError("local needs a checkpoint folder: local:PATH")
    head = head_file_for(arg, options.pop("head", None))
    if head is not None:  # a head trained on this checkpoint: point with it
        keep = {k: options[k] for k in ("device", "dtype", "threshold") if k in options}
        return CheckpointHeadGrounder(arg, head, **keep)
    policy = LocalPolicy(arg, **options)
    return PolicyGrounder(policy, name=f"local:{os.path.basename(os.path.normpath(arg))}")


def _trained(arg: str | None, options: dict[str, Any]) -> Grounder:
    from vlagent.grounding.grounders.head import HeadGrounder

    if not arg:
        raise GrounderSpecError("grounder needs a folder written by `vlagent train-grounding`: grounder:PATH")
    return HeadGrounder(arg, **options)


def _default(arg: str | None, options: dict[str, Any]) -> Grounder:
    from vlagent.grounding.grounders.head import default_grounder

    if arg:
        raise GrounderSpecError("default takes options only, e.g. default,threshold=0.4")
    return default_grounder(**options)


GrounderFactory = Callable[[str | None, dict[str, Any]], Grounder]
GROUNDER_FACTORIES: dict[str, GrounderFactory] = {
    "center": _center,
    "ocr": _ocr,
    "ocr-match": _ocr,
    "api": _api,
    "local": _local,
    "grounder": _trained,
    "default": _default,
}


def make_grounder(spec: str) -> Grounder:
    """The grounder a --grounder SPEC names (raises GrounderSpecError, PolicyError)."""
    name, arg, options = parse_spec(spec)
    if name not in GROUNDER_FACTORIES:
        raise GrounderSpecError(f"unknown grounder {name!r} in {spec!r} (one of: {', '.join(GROUNDER_FACTORIES)})")
    try:
        return GROUNDER_FACTORIES[name](arg, options)
    except GrounderSpecError:
        raise
    except (TypeError, ValueError) as exc:  # an option the constructor does not take, or a bad value
        unknown = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        why = f"{name!r} has no option {unknown.group(1)!r}" if unknown else str(exc)
        raise GrounderSpecError(f"bad options for {name!r} in {spec!r}: {why}") from None


__all__ = [
    "Candidate", "CenterGrounder", "GROUNDER_FACTORIES", "Grounder", "GrounderSpecError", "GroundingResult",
    "OcrMatchGrounder", "make_grounder", "parse_spec",
]  # fmt: skip
