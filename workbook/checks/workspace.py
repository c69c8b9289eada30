"""A lab's folder and names: Lab, resetting a lab (prepare...), the learner's files in it."""

import contextlib
import io
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .. import BUILD, engine, resources, service, swarm
from .report import NotDone

WORKSPACES = BUILD / "labs"  # a folder per lab owner: the lab's Dockerfile, compose file...


@dataclass
class Lab:
    """A lab's own folder, owner and image name."""

    number: str
    owner: str
    path: Path
    tag: str

    @property
    def dockerfile(self):
        """The lab's Dockerfile, relative to the notebook (for `%%writefile {lab.dockerfile}`)."""
        return lab_file(self, "Dockerfile")

    @property
    def context(self):
        """The lab's folder relative to the notebook: the build context a typed `docker build` sends."""
        return self.dockerfile.parent

    @property
    def container(self):
        """The name the learner gives the lab's container (docker run --name)."""
        return f"{self.owner}-api"


def prepare(client, number, owner, given=None, tag=None):
    """Reset a lab: remove what `owner` labelled, then a fresh folder with the app's sources."""
    resources.cleanup(client, owner)
    path = WORKSPACES / owner
    path.parent.mkdir(parents=True, exist_ok=True)
    service.copy_context(path)
    for f in path.glob("Dockerfile*"):  # the learner writes the Dockerfile
        f.unlink()
    if given:
        (path / "Dockerfile").write_text(given)
    return Lab(number, owner, path, tag or f"workbook/lab-{number}:latest")


def lab_file(lab, name):
    """A file of the lab's folder, relative to the notebook (for `%%writefile {path}`)."""
    return Path(os.path.relpath(lab.path / name))


def prepare_folder(client, number, owner, tag=None):
    """Reset a stack lab: its project down, what `owner` labelled removed, an empty folder."""
    reset_stack(client, owner)
    resources.cleanup(client, owner)
    path = WORKSPACES / owner
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return Lab(number, owner, path, tag or f"workbook/lab-{number}:latest")


def reset_stack(client, owner):
    """Take the lab's Compose project down and remove its swarm stack, found by their names."""
    # By name: a learner's compose file may carry no label; resources.cleanup does the rest.
    subprocess.run([*engine.compose_cmd(), "-p", project_name(owner), "down", "--volumes",
                    "--remove-orphans", "--timeout", "2"], capture_output=True, timeout=120)
    with contextlib.redirect_stdout(io.StringIO()):  # no `$ docker stack rm` line
        swarm.remove_stack(client, stack_name(owner))


def project_name(owner):
    """The lab's Compose project name (lower case, as compose wants)."""
    return "workbook-" + re.sub(r"[^a-z0-9-]", "-", owner.lower())


def stack_name(owner):
    """The lab's swarm stack name (short: services are called STACK_api, STACK_nginx)."""
    return "wb" + re.sub(r"[^a-z0-9]", "", owner.lower())[:16]


def _unfinished(path):
    """NotDone when the learner's file is missing or still holds the lab's TODO lines."""
    shown = os.path.relpath(path)
    if not path.exists():
        raise NotDone(f"{shown} does not exist yet", "run the %%writefile cell above")
    todo = [ln.strip() for ln in path.read_text().splitlines()
            if ln.strip().startswith("# TODO") and "optional" not in ln]
    if todo:
        raise NotDone(f"{shown} still has {len(todo)} TODO line(s), e.g. {todo[0]!r}",
                      "write your answer in place of each # TODO line, run the cell, then the "
                      "check")
