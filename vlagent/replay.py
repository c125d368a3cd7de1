"""Re-execute a recorded run.

The recorded actions are played back by a `ScriptedPolicy` through the same
`Agent`, so the replay is itself recorded (new run folder, new report) and
goes through the same safety gate. Secrets were recorded as `{{name}}`
placeholders; pass `secrets` to substitute them again.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from vlagent.agent import Agent, RunResult
from vlagent.policy.scripted import ScriptedPolicy
from vlagent.recorder import load_trajectory


def replay(
    run_dir: str | os.PathLike,
    env: Any,
    *,
    dry_run: bool = False,
    run_dir_out: str | os.PathLike | None = None,
    secrets: Any = None,
    **agent_options: Any,
) -> RunResult:
    """Play the actions of `run_dir` again on `env`; returns the new run's result.

    `run_dir_out` is the new run folder (default ``runs/<stamp>-replay-<task>``
    next to the original). `agent_options` go to `Agent` (confirm, asker,
    max_seconds, on_step...).
    """
    run_dir = Path(run_dir)
    header, _, _ = load_trajectory(run_dir)
    task = header.get("task") or run_dir.name
    policy = ScriptedPolicy.from_trajectory(run_dir)
    policy.name = f"replay of {run_dir.name}"
    agent_options.setdefault("max_steps", len(policy.steps) + 1)  # +1: the closing done
    agent_options.setdefault("runs_root", run_dir.parent)
    if run_dir_out is None:
        from vlagent.recorder import default_run_dir

        run_dir_out = default_run_dir(f"replay {task}", agent_options["runs_root"])
    agent = Agent(policy, env, dry_run=dry_run, secrets=secrets, run_dir=run_dir_out, **agent_options)
    return agent.run(task)


__all__ = ["replay"]
