"""Work the practice app's form by description: no coordinates anywhere.

    vlagent demo                      # starts a display and the practice app, runs run() below, checks the app
    python demos/desktop_form.py      # on a desktop where the practice app is already open:
                                      #   python -m vlagent.environments.practice.desktop_app --state-file /tmp/s.json

Each call takes a fresh screenshot, asks the grounder where the described element is, acts there and
records the step; a description that matches nothing raises vlagent.TargetNotFound and clicks nothing.
With the OCR grounder a description is found by the text it names ("Save", "Name", "Drag me"), so
name what is written on or beside the element.
"""
import vlagent

TEXT = "Grüße, 你好"


def run(bot) -> None:
    """The steps, on a Bot from vlagent.connect()."""
    bot.wait_for("the Save button", timeout=10)             # the window is up
    bot.click("the Save button")
    bot.type_into("the Name field", TEXT)                   # clicking the field's label focuses the field
    bot.click("the checkbox labelled Remember me")
    bot.scroll("down", within="'Item 03' in the list", amount=5)
    bot.drag("the 'Drag me' token", to="the 'Drop here' area")


def main() -> int:
    with vlagent.connect("desktop", grounder="default") as bot:
        run(bot)
    print("report:", bot.run_dir / "report.html")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
