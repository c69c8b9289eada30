"""Copy files into a new root folder, every symlink on their way kept: the traced image's floor.

    python copy-traced.py LIST DEST [PATH ...]

LIST holds absolute paths, one a line; each PATH may also be a glob (/lib*/ld-linux*). A file
is copied with its mode, owner and times (bytecode checks its source's time); a symlink, the
file itself or a folder on its way (/lib64 on a merged-/usr system), is made again as the same
symlink, then followed; a folder given is made empty, with its mode (/tmp: 1777). A file
the service made at run time (a cache in its home) is not in the image: only the folders on
its way that are, with their owners, so that the service can make it again.
Bytecode read from __pycache__ whose source LIST does not name (the import only checked the
source's date) is copied as the module's .pyc beside it, without the source: Python imports
such a sourceless module the same way, and tracebacks show no source lines.
"""

import glob
import os
import re
import shutil
import stat
import sys

BYTECODE = re.compile(r"(.*)/__pycache__/([^/.]+)\.[^/]*pyc$")  # FOLDER, NAME


def keep(st, target):
    """Give `target` the mode, times and (as root) the owner of the source's stat `st`."""
    if os.geteuid() == 0:
        os.chown(target, st.st_uid, st.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(target, stat.S_IMODE(st.st_mode))
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


def copy(path, dest):
    """Copy `path` to dest + path, one component at a time: symlinks as symlinks, followed."""
    parts = os.path.normpath(path).strip("/").split("/")
    here = ""
    for i, name in enumerate(parts):
        here = f"{here}/{name}"
        try:
            st, target = os.lstat(here), dest + here
        except FileNotFoundError:  # the service made it at run time: it can make it again
            return None
        if stat.S_ISLNK(st.st_mode):
            link = os.readlink(here)
            if not os.path.lexists(target):
                os.symlink(link, target)
                keep(st, target)
            rest = os.path.join(os.path.dirname(here), link, *parts[i + 1:])
            return copy(rest, dest)
        if os.path.lexists(target):
            continue
        if stat.S_ISDIR(st.st_mode):
            os.mkdir(target)
        else:
            shutil.copyfile(here, target)
        keep(st, target)
    return dest + here


def sourceless(path, dest, folder, name):
    """Copy FOLDER/__pycache__/NAME.*.pyc (`path`) to dest + FOLDER/NAME.pyc."""
    target = f"{copy(folder, dest)}/{name}.pyc"
    shutil.copyfile(path, target)
    keep(os.stat(path), target)


def expand(pattern):
    """The paths a PATH argument names (a glob may name none; a plain path must exist)."""
    found = sorted(glob.glob(pattern))
    if not found and not glob.has_magic(pattern):
        raise SystemExit(f"copy-traced.py: {pattern}: no such file")
    return found


def main(listing, dest, *extra):
    """Copy every path of `listing` and every `extra` one under `dest`."""
    os.makedirs(dest, exist_ok=True)
    with open(listing) as f:
        paths = f.read().split()
    for pattern in extra:
        paths += expand(pattern)
    listed, dest = set(paths), dest.rstrip("/")
    for path in paths:
        pyc = BYTECODE.match(path)
        if pyc and f"{pyc[1]}/{pyc[2]}.py" not in listed:
            sourceless(path, dest, *pyc.groups())
        else:
            copy(path, dest)
    print(f"copy-traced.py: {len(paths)} paths copied to {dest}")


if __name__ == "__main__":
    main(*sys.argv[1:])
