"""vlagent: a vision-language agent for GUI automation.

Public API (imported lazily so `import vlagent` stays fast):

    from vlagent import Action, parse_actions, Agent, OpenAIPolicy, ScriptedPolicy
    bot = vlagent.connect("desktop"); bot.click("the Save button")   # scripts by description
    from vlagent.environments import DesktopEnv, AndroidEnv
    from vlagent.model import load_model
"""

__version__ = "0.1.0"

_LAZY = {
    "Action": "vlagent.actions",
    "ActionParseError": "vlagent.actions",
    "parse_actions": "vlagent.actions",
    "Agent": "vlagent.agent",
    "RunResult": "vlagent.agent",
    "Observation": "vlagent.environments",
    "ScriptedPolicy": "vlagent.policy",
    "OpenAIPolicy": "vlagent.policy",
    "LocalPolicy": "vlagent.policy",
    "connect": "vlagent.scripting",
    "TargetNotFound": "vlagent.scripting",
    "ActionFailed": "vlagent.scripting",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vlagent' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY]
