"""`python -m vlagent ...` is the `vlagent` command."""

import sys

from vlagent.cli import main

if __name__ == "__main__":
    sys.exit(main())
