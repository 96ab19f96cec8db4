"""Write tests/golden/report.md anew from the fixed rows of tests/test_report.py, after a deliberate
change of the report (then read the diff before committing it): python tests/golden/render.py"""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from test_report import GOLDEN, fixed_results, render  # noqa: E402

with tempfile.TemporaryDirectory() as folder:
    GOLDEN.write_text(render(fixed_results.__wrapped__(Path(folder))))
print(f"wrote {GOLDEN}")
