"""Let a model served behind an OpenAI-compatible API operate this desktop.

    vllm serve Qwen/Qwen3.5-27B ...          # or SGLang, Ollama, a hosted API
    python demos/desktop_with_api.py http://localhost:8000/v1 Qwen/Qwen3.5-27B "open the Files app"

Run it in a VM or a separate user account: the model moves your real mouse.
Every run is recorded under runs/ with a report.html you can open.
"""

import sys

from vlagent.agent import Agent
from vlagent.environments import DesktopEnv
from vlagent.policy import OpenAIPolicy


def main(api_base: str, model: str, task: str) -> int:
    policy = OpenAIPolicy(model, base_url=api_base)
    with DesktopEnv(monitor=1) as env:
        agent = Agent(policy, env, max_steps=25, confirm="risky")
        result = agent.run(task)
    print(result.status, result.answer or "")
    print("report:", result.report)
    return 0 if result.finished else 1


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
