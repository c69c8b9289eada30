"""The files a running service really reads, traced inside its container, and their bytes."""

import json
from dataclasses import dataclass, field
from pathlib import Path

from . import service

TRACER = Path(__file__).parent / "tracer"
# The dynamic loader logs each library it looks for (LD_DEBUG=libs): the names it opens them
# by (libz.so.1, a symlink), which /proc/PID/maps does not show (it has libz.so.1.2.13).
TRACE_ENV = {"PYTHONPATH": "/wb-trace", "WB_TRACE_OUT": "/tmp/wb-trace.log",
             "LD_DEBUG": "libs", "LD_DEBUG_OUTPUT": "/tmp/wb-ld"}

# Run inside the container (untraced): every file the trace logged, the loader found or a
# process has mapped (shared libraries, the interpreter), as [path as opened, real path,
# device, inode, bytes].
COLLECT = r"""
import glob, json, os, re
paths = set(open("/tmp/wb-trace.log").read().split())
for log in glob.glob("/tmp/wb-ld.*"):
    paths |= {os.path.normpath(p) for p in re.findall(r"(?:file=|init: )(/\S+)", open(log).read())}
me = str(os.getpid())
for pid in filter(str.isdigit, os.listdir("/proc")):
    if pid == me:
        continue
    try:
        maps = open(f"/proc/{pid}/maps").read()
    except OSError:
        continue
    paths |= set(re.findall(r"\s(/\S+)$", maps, re.M))
rows = []
for p in sorted(paths):
    if not p.startswith(("/proc", "/sys", "/dev", "/tmp", "/wb-trace")) and os.path.isfile(p):
        st = os.stat(p)
        rows.append([p, os.path.realpath(p), st.st_dev, st.st_ino, st.st_size])
print(json.dumps(rows))
"""


@dataclass
class Footprint:
    """What a service read while it started and served: path -> bytes."""
    image: str
    files: dict = field(default_factory=dict)

    @property
    def bytes(self):
        return sum(self.files.values())

    def by_group(self):
        """Bytes per package (site-packages) or per top folder (the rest), largest first."""
        return by_group(self.files)


def group(path):
    """Where a file belongs: its site-packages package, the stdlib, the model, or a folder."""
    parts = path.split("/")
    if "site-packages" in parts and len(parts) > parts.index("site-packages") + 1:
        return parts[parts.index("site-packages") + 1].split(".libs")[0]
    if "/lib/python3" in path:
        return "python stdlib"
    if path.endswith(".skops"):
        return "model"
    return "system: " + "/".join(parts[:3])


def by_group(files, key=group):
    """Sum path -> bytes by key(path), largest first."""
    groups = {}
    for path, size in files.items():
        groups[key(path)] = groups.get(key(path), 0) + size
    return dict(sorted(groups.items(), key=lambda kv: -kv[1]))


# Every regular file of an image with its size (run as root: some folders are private).
LIST = r"""
import json, os
files = {}
for root, dirs, names in os.walk("/"):
    if root in ("/proc", "/sys", "/dev"):
        dirs[:] = []
        continue
    for n in names:
        p = os.path.join(root, n)
        if os.path.isfile(p) and not os.path.islink(p):
            files[os.path.realpath(p)] = os.lstat(p).st_size
print(json.dumps(files))
"""


def image_files(client, image):
    """path -> bytes for every regular file in an image."""
    out = client.containers.run(image, ["python", "-c", LIST], remove=True, user="0")
    return json.loads(out)


def unused(client, image, fp):
    """Bytes in the image that the trace never saw opened, grouped by sub-package or folder."""
    def subpackage(path):  # one level deeper than group(): scipy/stats, /usr/lib/x86_64-…
        parts = path.split("/")
        if "site-packages" in parts:
            i = parts.index("site-packages")
            return "/".join(parts[i + 1:i + 3]) if len(parts) > i + 3 else parts[i + 1]
        return group(path) if "/lib/python3" in path else "/".join(parts[:4])
    left = {p: b for p, b in image_files(client, image).items() if p not in fp.files}
    return by_group(left, subpackage)


def exercise(container):
    """What a service does in its life: start, health, metadata, predictions, a bad request."""
    service.wait_ready(container)
    service.call(container, "/metadata")
    service.predictions(container)
    service.call(container, "/predict", service.SAMPLES[0][0])
    service.call(container, "/predict", {"petal_lenght": 1})


def traced(client, image, owner, exercise=exercise):
    """Run `image` with the tracer mounted, exercise(container) it, and return COLLECT's rows."""
    c = service.run(client, image, owner, env=TRACE_ENV, kind="trace",
                    volumes={str(TRACER): {"bind": "/wb-trace", "mode": "ro"}})
    try:
        exercise(c)
        code, out = c.exec_run(["python", "-c", COLLECT], environment={"WB_TRACE_OUT": ""})
        if code:
            raise RuntimeError(f"collecting the trace failed: {out.decode()[-800:]}")
        return json.loads(out)
    finally:
        c.remove(force=True)


def trace(client, image, owner):
    """Run `image` with the tracer mounted, exercise it, and return its Footprint."""
    files, inodes = {}, set()
    for _, real, dev, inode, size in traced(client, image, owner):
        if (dev, inode) not in inodes:  # one file under several names once
            inodes.add((dev, inode))
            files[real] = size
    return Footprint(image, files)
