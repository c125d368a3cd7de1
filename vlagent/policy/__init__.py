"""Policies decide the next actions. Heavy ones are imported lazily."""

from vlagent.policy.base import Decision, HistoryItem, Policy, StopRun

_LAZY = {
    "ScriptedPolicy": "vlagent.policy.scripted",
    "OpenAIPolicy": "vlagent.policy.openai_policy",
    "LocalPolicy": "vlagent.policy.local",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vlagent.policy' has no attribute {name!r}")


__all__ = ["Policy", "Decision", "HistoryItem", "StopRun", "ScriptedPolicy", "OpenAIPolicy", "LocalPolicy"]
