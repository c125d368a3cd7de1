"""Drive a phone by description, with the phone's own verbs (home, back, open an app, swipe, long-press).

    vlagent demo --android                    # starts the virtual phone behind a real adb server, runs run()
    python demos/android_settings.py SERIAL   # the bundled virtual phone already `adb connect`ed:
                                              #   python -m vlagent.environments.practice.virtual_android --port 5555

The steps name what is on the screen of the bundled virtual phone (its Settings and Notes apps); on a
real phone, change the descriptions to what its screens say.
"""
import sys

import vlagent

TEXT = "Grüße, 你好"


def run(bot) -> None:
    """The steps, on a Bot from vlagent.connect("android")."""
    bot.home()
    bot.click("the Settings app")
    bot.click("the Dark mode switch")
    bot.swipe("Storage", to="Wi-Fi")                  # the finger moves up: the list shows what lies below
    bot.click("the Battery saver switch")
    bot.click("Accessibility")
    bot.wait_for("the 'Nothing to change here yet' text", timeout=10)
    bot.back()
    bot.wait_for("the Battery saver switch", timeout=10)  # back on the list, still scrolled
    bot.home()
    bot.open_app("Notes")
    bot.type_into("the 'Write a note' field", "Buy milk")
    bot.click("the Save button")
    bot.type_into("the 'Write a note' field", TEXT)
    bot.click("the Save button")
    bot.long_press("the note 'Buy milk'")             # a long press deletes a saved note


def main() -> int:
    where = f"android:{sys.argv[1]}" if len(sys.argv) > 1 else "android"
    with vlagent.connect(where, grounder="default") as bot:
        run(bot)
    print("report:", bot.run_dir / "report.html")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
