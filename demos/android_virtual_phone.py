"""Control an Android device over adb; here, the bundled virtual phone.

    python demos/android_virtual_phone.py

With a real phone: enable USB debugging, `adb devices`, then use
`AndroidEnv(serial="...")` (or `vlagent run "TASK" --env android`).
"""

import subprocess

from vlagent.actions import Action
from vlagent.agent import Agent
from vlagent.environments import AndroidEnv
from vlagent.environments.practice.virtual_android import VirtualAndroidDevice
from vlagent.policy import ScriptedPolicy


def main() -> int:
    with VirtualAndroidDevice() as phone:
        subprocess.run(["adb", "connect", phone.serial], check=True)
        with AndroidEnv(phone.serial) as env:
            script = ScriptedPolicy([
                Action("open_app", text="Settings"),
                Action("scroll", direction="down", amount=5),
                Action("answer", text="Settings is open and scrolled."),
            ])
            result = Agent(script, env, max_steps=5).run("open Settings and scroll down")
        subprocess.run(["adb", "disconnect", phone.serial], check=False)
    print(result.status, result.answer)
    print("report:", result.report)
    return 0 if result.finished else 1


if __name__ == "__main__":
    raise SystemExit(main())
