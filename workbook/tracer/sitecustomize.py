"""Imported by every Python started with this folder on PYTHONPATH: logs each file it opens.

workbook.footprint mounts this folder into a container to find the files a service really
reads. Audit hooks (PEP 578) see every open() and every import's io.open_code(); shared
libraries do not pass through them and are read from /proc/PID/maps instead. What Python
read before this hook (the interpreter, pyvenv.cfg, the first modules) is logged when it is
installed, and a process's extension modules and mapped files when it exits (a short-lived
process such as a HEALTHCHECK is gone before anyone reads its maps).
"""
import atexit
import os
import sys

_out = os.environ.get("WB_TRACE_OUT")
if _out:
    _fd = os.open(_out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)  # before the hook
    _seen = set()

    def _log(path):
        if path not in _seen:
            _seen.add(path)
            os.write(_fd, (os.path.abspath(path) + "\n").encode())  # os.write is not audited

    def _hook(event, args):
        if event == "open" and isinstance(args[0], str):
            _log(args[0])

    def _modules():
        """The file each imported module came from (its bytecode when it has some)."""
        for module in list(sys.modules.values()):
            path = getattr(module, "__cached__", None) or getattr(module, "__file__", None)
            if isinstance(path, str):
                _log(path)

    def _at_exit():
        _modules()
        with open("/proc/self/maps") as maps:
            for fields in map(str.split, maps):
                if len(fields) > 5 and fields[5].startswith("/"):
                    _log(fields[5])

    for _path in (sys.executable, os.path.join(sys.prefix, "pyvenv.cfg")):
        _log(_path)
    _modules()
    sys.addaudithook(_hook)
    atexit.register(_at_exit)
