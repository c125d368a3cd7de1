"""Drive the bundled Tk practice app with a scripted policy, no model needed.

    python demos/scripted_practice_app.py        # starts its own Xvfb when DISPLAY is unset

This is what `vlagent demo` does; read it to see how an Environment, a Policy
and the Agent fit together.
"""

from vlagent.demo import run_demo


def main() -> int:
    outcome = run_demo(log=print)
    for name, ok in outcome.checks.items():
        print("ok  " if ok else "FAIL", name)
    print("report:", outcome.result.report)
    return 0 if all(outcome.checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
