"""``python -m glimpser.hub``: run the hub."""

import sys

from glimpser.hub.cli import main

if __name__ == "__main__":
    sys.exit(main())
