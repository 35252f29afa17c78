"""``python -m worldmodel``: the ``worldmodel`` command (so that ``torchrun -m worldmodel train``
starts one training process per rank)."""

import sys

from worldmodel.cli import main

if __name__ == "__main__":
    sys.exit(main())
