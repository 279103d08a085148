"""``python -m harness.cli``: the same entry point as ``fedma``."""
import sys

from harness.cli import main

sys.exit(main())
