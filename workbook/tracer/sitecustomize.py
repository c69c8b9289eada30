"""Imported by every Python started with this folder on PYTHONPATH: logs each file it opens.

workbook.footprint mounts this folder into a container to find the files a service really
reads. Audit hooks (PEP 578) see every open() and every import's io.open_code(); shared
libraries do not pass through them and are read from /proc/PID/maps instead.
"""
import os
import sys

_out = os.environ.get("WB_TRACE_OUT")
if _out:
    _fd = os.open(_out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)  # before the hook
    _seen = set()

    def _hook(event, args):
        if event == "open" and isinstance(args[0], str) and args[0] not in _seen:
            _seen.add(args[0])
            os.write(_fd, (os.path.abspath(args[0]) + "\n").encode())  # os.write is not audited

    sys.addaudithook(_hook)
