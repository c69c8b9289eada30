"""A local image registry on 127.0.0.1, started for a lesson and stopped after it.

Debian's `docker-registry` package (distribution 2.8) when the host has it or can install it,
else the official `registry:2` image when the engine has it. The engine trusts registries on
127.0.0.0/8 without TLS, so push and pull work with no certificate.
"""

import atexit
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import NamedTuple

from docker.errors import APIError, DockerException, ImageNotFound

from . import BUILD, WorkbookError, bases, engine, images
from .resources import free_port, host_port, labels, unique_name

BINARY = "docker-registry"
OFFICIAL = "registry:2"
STORAGE = BUILD / "registry"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


def binary():
    """Path of Debian's registry binary, or None."""
    return shutil.which(BINARY) or next(
        (p for p in ("/usr/bin/docker-registry",) if Path(p).exists()), None)


def install(log=BUILD / "registry-install.log"):
    """apt-get install docker-registry (Debian/Ubuntu, root), without leaving its service running."""
    if not engine._can_self_install():
        raise WorkbookError(
            "No local registry: Debian's docker-registry is not installed and the image "
            f"{OFFICIAL} is not available.",
            "On Debian/Ubuntu: `sudo apt-get install docker-registry`; elsewhere "
            f"`docker pull {OFFICIAL}` (or `docker load` it), then run this again.")
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"Installing Debian's docker-registry with apt-get (log: {log}) ...", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-o", "DPkg::Lock::Timeout=300",
           "--no-install-recommends", BINARY]
    try:
        engine._run_logged(cmd, log, env=env)
    except WorkbookError:  # stale package lists
        engine._run_logged(["apt-get", "update"], log, env=env)
        engine._run_logged(cmd, log, env=env)
    # The package enables a service on :5000 (all interfaces); the workbook only wants its binary.
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
        subprocess.run(["systemctl", "disable", "--now", BINARY], capture_output=True, check=False)
    return binary()


def _die_with_parent():
    """A preexec_fn that makes the child get SIGTERM when its parent (a kernel, a test run) dies."""
    try:
        import ctypes
        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl  # looked up here, not in the child
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Pushed(NamedTuple):
    """What a push did: the manifest digest, and how many layers it sent or found there already."""

    digest: str
    sent: int
    skipped: int


class Registry:
    """A running local registry: `address` is 127.0.0.1:PORT; stop() removes all it stored."""

    def __init__(self, client, owner, image=None):
        self.client, self.owner, self.image = client, owner, image
        self.proc = self.container = self.storage = None
        self.address = None

    # -- start and stop -------------------------------------------------------------------
    def start(self, timeout=20):
        """Start the registry (the Debian binary, or a container of `image`) and wait for /v2/."""
        if self.image:
            self._start_container()
        else:
            self._start_process()
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.proc is not None and self.proc.poll() is not None:
                log = self.storage / "registry.log"
                raise WorkbookError(f"docker-registry exited at once (code {self.proc.returncode}):\n"
                                    + log.read_text()[-800:], f"Read {log}.")
            if time.monotonic() > deadline:
                self.stop()
                raise WorkbookError(f"The registry did not answer on {self.address} within {timeout} s.",
                                    "Run it again; if it persists, read the registry's log.")
            time.sleep(0.1)
        atexit.register(self.stop)
        return self

    def _start_process(self):
        path = binary() or install()
        STORAGE.mkdir(parents=True, exist_ok=True)
        self.storage = Path(tempfile.mkdtemp(prefix=f"{self.owner}-", dir=STORAGE))
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        config = self.storage / "config.yml"
        config.write_text(CONFIG.format(root=self.storage / "data", port=port))
        with open(self.storage / "registry.log", "w") as log:
            self.proc = subprocess.Popen([path, "serve", str(config)], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         preexec_fn=_die_with_parent())  # noqa: PLW1509

    def _start_container(self):
        self.container = self.client.containers.run(
            self.image, detach=True, name=unique_name(self.owner, "registry"),
            ports={"5000/tcp": ("127.0.0.1", None)}, labels=labels(self.owner))
        self.address = f"127.0.0.1:{host_port(self.container, '5000/tcp')}"

    def _answers(self):
        try:
            with urllib.request.urlopen(f"http://{self.address}/v2/", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self):
        """Untag every local image named after this registry, stop it, delete its storage."""
        if self.address:
            for img in self.client.api.images():  # tags and pulled-by-digest references
                for t in (img.get("RepoTags") or []) + (img.get("RepoDigests") or []):
                    if t.startswith(self.address + "/"):
                        try:
                            self.client.images.remove(t)
                        except (ImageNotFound, APIError):
                            pass
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.container is not None:
            try:
                self.container.remove(force=True, v=True)
            except DockerException:
                pass
        if self.storage is not None:
            shutil.rmtree(self.storage, ignore_errors=True)
        self.proc = self.container = self.storage = None
        atexit.unregister(self.stop)

    def __enter__(self):
        return self.start() if self.address is None else self

    def __exit__(self, *exc):
        self.stop()

    # -- using it -------------------------------------------------------------------------
    def ref(self, repository, tag=None, digest=None):
        """127.0.0.1:PORT/REPOSITORY:TAG (or @DIGEST): a name that says where the image lives."""
        return f"{self.address}/{repository}" + (f"@{digest}" if digest else f":{tag or 'latest'}")

    def push(self, image, repository, tag="latest"):
        """docker tag IMAGE ADDRESS/REPO:TAG && docker push it: the digest, layers sent and skipped."""
        image = self.client.images.get(image) if isinstance(image, str) else image
        image.tag(f"{self.address}/{repository}", tag)
        digest, sent, skipped = None, 0, 0
        for chunk in self.client.api.push(f"{self.address}/{repository}", tag=tag,
                                          stream=True, decode=True):
            if "error" in chunk:
                raise WorkbookError(f"docker push {self.ref(repository, tag)} failed: "
                                    f"{chunk['error']}", "Read the registry's log.")
            status = chunk.get("status", "")
            sent += status == "Pushed"
            skipped += status == "Layer already exists" or status.startswith("Mounted from")
            digest = chunk.get("aux", {}).get("Digest", digest)
        return Pushed(digest, sent, skipped)

    def pull(self, repository, tag=None, digest=None):
        """docker pull ADDRESS/REPO:TAG or ADDRESS/REPO@DIGEST; return the image."""
        ref, fix = self.ref(repository, tag, digest), "Check the name, tag or digest against catalog() and tags()."
        try:
            for chunk in self.client.api.pull(f"{self.address}/{repository}", tag=digest or tag or "latest",
                                              stream=True, decode=True):
                if "error" in chunk:  # docker-py's images.pull would ignore it
                    raise WorkbookError(f"docker pull {ref} failed: {chunk['error']}", fix)
            return self.client.images.get(ref)
        except APIError as exc:
            raise WorkbookError(f"docker pull {ref} failed: {exc.explanation}", fix) from None

    def _get(self, path, method="GET", accept=MANIFEST_V2):
        req = urllib.request.Request(f"http://{self.address}/v2/{path}", method=method,
                                     headers={"Accept": accept})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()

    def catalog(self):
        """GET /v2/_catalog: the repositories stored."""
        return json.loads(self._get("_catalog")[2])["repositories"]

    def tags(self, repository):
        """GET /v2/REPO/tags/list: the tags of a repository ([] when none is left)."""
        return json.loads(self._get(f"{repository}/tags/list")[2]).get("tags") or []

    def digest(self, repository, tag):
        """HEAD /v2/REPO/manifests/TAG: the digest a tag points to now."""
        return self._get(f"{repository}/manifests/{tag}", method="HEAD")[1]["Docker-Content-Digest"]

    def image_id(self, repository, tag):
        """The image id a stored tag holds: its manifest's config digest (None when no such tag)."""
        try:
            return json.loads(self._get(f"{repository}/manifests/{tag}")[2])["config"]["digest"]
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def delete(self, repository, digest):
        """DELETE /v2/REPO/manifests/DIGEST: remove a manifest (and every tag on it)."""
        status = self._get(f"{repository}/manifests/{digest}", method="DELETE")[0]
        return status == 202

    def has(self, repository, digest):
        """True when the registry still serves the manifest `digest`."""
        try:
            self._get(f"{repository}/manifests/{digest}", method="HEAD")
            return True
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return False
            raise


def official_image(client):
    """The official registry image when the engine has it (or can pull it), else None."""
    if images.exists(client, OFFICIAL) or bases._try_pull(client, OFFICIAL):
        return OFFICIAL
    return None


def start(client, owner, image=None):
    """A started Registry: Debian's binary if installed, else the official image if present,
    else the binary installed now (Debian/Ubuntu root); image= forces a container."""
    if image is None and binary() is None:
        image = images.exists(client, OFFICIAL) and OFFICIAL or None
        if image is None and not _installable():
            image = official_image(client)
    return Registry(client, owner, image).start()


def _installable():
    return engine._can_self_install()

