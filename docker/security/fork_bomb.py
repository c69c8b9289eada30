"""A fork bomb, for lesson 07b §2: every process forks forever; PID 1 reports the first refusal."""
import os
import time

refused = False
while True:  # the first process and every copy fork forever
    try:
        os.fork()
    except OSError as error:
        if not refused and os.getpid() == 1:
            print("fork refused:", error.strerror, flush=True)
        refused = True
        time.sleep(0.1)
