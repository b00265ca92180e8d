"""Entry point of the Pulumi program (Pulumi.yaml: ``main: infra/``).

Pulumi runs this file with ``infra/`` as the program directory; the repository root goes on
the import path so that ``infra`` and the runner's ``dbsync`` import as packages.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.program import build

build()
