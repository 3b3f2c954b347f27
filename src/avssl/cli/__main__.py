"""``python -m avssl.cli``: the ``avssl`` command (what torchrun starts: ``torchrun ... -m avssl.cli pretrain``)."""
import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
