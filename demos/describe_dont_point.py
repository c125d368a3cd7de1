"""A script that names what to click instead of where: vlagent.connect() on the practice app.

    python demos/describe_dont_point.py        # starts its own Xvfb and the practice app

Every call takes a fresh screenshot, finds the described element with the grounder (here the
offline default), clicks it, and records the step; the run's report.html is printed at the end.
"""
import tempfile
from pathlib import Path

import vlagent
from vlagent.environments.desktop import DesktopEnv
from vlagent.environments.practice import desktop_app
from vlagent.environments.xserver import start_virtual_display


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp, start_virtual_display(1280, 720) as display:
        state_file = Path(tmp) / "state.json"
        app = desktop_app.launch(state_file, display.name, geometry="800x560+200+80", env=display.env)
        try:
            with vlagent.connect("desktop", env=DesktopEnv(display=display.name)) as bot:
                bot.click("the Open button")
                bot.click("Remember me")
                print("Save on screen:", bot.exists("the Save button"))
                try:
                    bot.click("the Purple Elephant button")  # there is none: nothing is clicked
                except vlagent.TargetNotFound as missing:
                    print("not found, as expected:", missing)
            state = desktop_app.read_state(state_file)
            print("the app saw clicks:", state["clicks"], "checkbox:", state["checkbox"])
            print("report:", bot.run_dir / "report.html")
            return 0 if state["last_clicked"] == "open" else 1
        finally:
            app.terminate()


if __name__ == "__main__":
    raise SystemExit(main())
