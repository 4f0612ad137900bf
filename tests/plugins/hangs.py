"""A plugin file that never finishes loading: it starts a child process, writes
the child's pid to the file ``HANGS_MARKER`` names, and sleeps.

Used by tests/dev/test_server.py: loading it must time out, and the child
must be killed with it.
"""

import os
import subprocess
import sys
import time

child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
with open(os.environ["HANGS_MARKER"], "w") as marker:
    marker.write(str(child.pid))
time.sleep(120)
