"""Practice environments: stand-ins that tests, demos and grounding data act on.

`desktop_app` is a Tk window that reports every click and keystroke in a state
file; `virtual_android` is a phone that speaks the real adb wire protocol.
Neither is needed to drive a real desktop or device.
"""
