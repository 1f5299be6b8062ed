"""lab.processes.stray_pids: the lab's programs whose argv names the lab dir, but never the process asking nor
its ancestors (`pbctl lab down --dir DIR` is a python3 parent of the pbctl-lab plugin, DIR in its argv)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CHILD = """
import json, os, sys
from pathlib import Path
from lab.processes import stray_pids
print(json.dumps({"parent": os.getppid(), "found": stray_pids(Path(sys.argv[1]))}))
"""

PARENT = """
import subprocess, sys
sys.exit(subprocess.run([sys.executable, "-c", sys.argv[1], sys.argv[2]]).returncode)
"""


def test_the_caller_and_its_parent_are_spared_a_stray_is_not(tmp_path: Path) -> None:
    lab_dir = tmp_path / "lab"
    stray = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "--dir", str(lab_dir)])
    try:
        out = subprocess.run([sys.executable, "-c", PARENT, CHILD, str(lab_dir)], capture_output=True, text=True,
                             cwd=REPO, timeout=60, check=True).stdout
        got = json.loads(out)
        assert got["parent"] not in got["found"]  # the pbctl that ran the plugin, DIR in its argv
        assert stray.pid in got["found"]
    finally:
        stray.kill()
        stray.wait()
