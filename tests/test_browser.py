"""JupyterLab in a real browser: notebook 00 runs from the UI, without an error, to its table; a
learner types lab 00's first commands and a lesson exercise's solution into their cells and
sees the checks' ✓ lines."""

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from workbook import BUILD, ROOT, labs, notebooks, resources
from workbook.resources import free_port

try:
    import playwright.sync_api as playwright
except ImportError:  # skipped below, with the reason
    playwright = None

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; Playwright's own download is never used
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
NOTEBOOK = ROOT / "notebooks" / "00_setup_check.ipynb"
OWNER = "00_setup_check"  # the notebook's own label: an interrupted run is cleaned up with it
SCREENSHOT = BUILD / "browser" / "00_setup_check.png"
START_WITHIN = 30  # seconds for JupyterLab to answer
RUN_WITHIN = 120  # bound for notebook 00 run from the UI: 10-25 s, 50-80 s on a loaded machine
STDERR = "application/vnd.jupyter.stderr"  # how JupyterLab marks tracebacks and stderr output

MISSING = (f"no {CHROMIUM}: `apt-get install chromium`" if not CHROMIUM.exists() else
           "playwright is not installed: `.venv/bin/pip install -e '.[dev]'`" if playwright is None
           else None)


@pytest.fixture(scope="module", autouse=True)
def browser_installed():
    """Skip without a browser, except where one is required (.ci/run installs it and says so)."""
    if MISSING and os.environ.get("WORKBOOK_BROWSER") == "required":
        pytest.fail(f"{MISSING} (WORKBOOK_BROWSER=required)")
    if MISSING:
        pytest.skip(MISSING)


# JupyterLab settings for a predictable page: every cell in the DOM (no windowing), no news
# or update toasts over the notebook.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False},
}


class Lab:
    """A JupyterLab server started from .venv on a copy of the notebooks it is given."""

    def __init__(self, root):
        self.root, self.port, self.token = root, free_port(), secrets.token_hex(16)
        env = dict(os.environ, PATH=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
                   WORKBOOK_REPEATS="1")  # the UI is under test here, not the timings
        for name, sub in [("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                          ("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTERLAB_SETTINGS_DIR", "settings"),
                          ("JUPYTERLAB_WORKSPACES_DIR", "workspaces")]:
            env[name] = str(root / ".jupyter" / sub)  # nothing from (or into) the user's ~/.jupyter
        for name, value in LAB_SETTINGS.items():
            path = root / ".jupyter" / "settings" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value))
        cmd = [str(ROOT / ".venv" / "bin" / "jupyter"), "lab", "--no-browser",
               f"--port={self.port}", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root / 'nb'}"]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        with open(root / "jupyterlab.log", "wb") as log:  # the server keeps its own copy of the fd
            self.proc = subprocess.Popen(cmd, env=env, cwd=root, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}"

    def api(self, path, method="GET"):
        """A call to the Jupyter REST API, parsed."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=5) as response:
            body = response.read()
        return json.loads(body) if body else None

    def wait_ready(self):
        deadline = time.monotonic() + START_WITHIN
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                return self.api("status")
            except OSError:
                time.sleep(0.3)
        pytest.fail(f"JupyterLab did not answer within {START_WITHIN} s:\n{self.tail()}")

    def tail(self):
        return (self.root / "jupyterlab.log").read_text(errors="replace")[-2000:]

    def stop(self):
        """Shut the kernels down, then the server; kill whatever is left of what it started."""
        children = notebooks.children(self.proc.pid)
        try:
            for kernel in self.api("kernels"):
                self.api(f"kernels/{kernel['id']}", method="DELETE")
        except OSError:
            pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        for pid in children:  # kernels run in their own session: not in the server's group
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a free port, serving a temporary copy of notebook 00 (never the original)."""
    root = tmp_path_factory.mktemp("lab")
    (root / "nb").mkdir()
    shutil.copy(NOTEBOOK, root / "nb" / NOTEBOOK.name)
    server = Lab(root)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium, driven by Playwright."""
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def cleanup_00(client):
    """Whatever happens, nothing notebook 00 labels stays (its last cell normally sees to it)."""
    yield
    resources.cleanup(client, OWNER)


def visible(page, limit=3000):
    """The notebook's text as the browser shows it (the end of it), for failure messages."""
    try:
        return page.locator(".jp-Notebook").first.inner_text(timeout=2000)[-limit:]
    except playwright.Error as exc:
        return f"(no notebook visible: {exc})"


def dialogs(page):
    """The text of every dialog JupyterLab shows (an error loading a theme, a kernel choice)."""
    return page.locator(".jp-Dialog").all_inner_texts()


def open_notebook(page, lab, name, attempts=3):
    """Open a notebook in JupyterLab, wait for its kernel to be idle and no dialog to show."""
    seen = []
    for _ in range(attempts):  # a busy machine can fail a stylesheet: JupyterLab then says so
        # A fresh workspace: nothing restored from an earlier page (another notebook open beside).
        page.goto(lab.url(f"lab/workspaces/{secrets.token_hex(4)}/tree/{name}"), timeout=30_000)
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=30_000)
        deadline = time.monotonic() + 30
        while not (_own_kernel_idle(lab, name) and "Python 3 (ipykernel)" in [
                t.strip() for t in page.locator(".jp-Toolbar-kernelName").all_inner_texts()]):
            if time.monotonic() > deadline:
                pytest.fail(f"no idle kernel for {name} within 30 s (dialogs: {dialogs(page)}):\n"
                            f"{lab.tail()}")
            time.sleep(0.3)
        shown = dialogs(page)
        if not shown:
            return
        seen.append(shown)
    pytest.fail(f"JupyterLab showed dialogs on every attempt: {seen}")


def _own_kernel_idle(lab, name):
    """The notebook has its session, and that session's kernel is idle."""
    return any(s["path"] == name and s.get("kernel") and s["kernel"]["execution_state"] == "idle"
               for s in lab.api("sessions"))


def _kernels_idle(lab):
    kernels = lab.api("kernels")
    return bool(kernels) and all(k["execution_state"] == "idle" for k in kernels)


def run_all(page, attempts=2):
    """Run > Run All Cells, from the menu bar, as a learner would; check that it started."""
    for _ in range(attempts):
        try:
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click(timeout=10_000)
            page.locator(".lm-Menu-item", has_text="Run All Cells").first.click(timeout=10_000)
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]"
                ".some(p => p.textContent.trim() !== '[ ]:')", timeout=10_000)
            return
        except playwright.Error:
            page.keyboard.press("Escape")  # close a menu left open
    pytest.fail(f"Run All Cells did not start; dialogs: {dialogs(page)}; the page shows:\n"
                f"{visible(page)}")


def prompts(page):
    """The execution prompts of every code cell: '[3]:', '[*]:' or '[ ]:'."""
    return [t.strip() for t in page.locator(".jp-CodeCell .jp-InputArea-prompt").all_inner_texts()]


def wait_finished(page, lab, within):
    """Wait until no cell is queued or running and the kernel is idle (twice in a row)."""
    deadline, calm = time.monotonic() + within, 0
    while time.monotonic() < deadline:
        shown = prompts(page)
        started = any(p[1:-2].isdigit() for p in shown)
        calm = calm + 1 if started and "[*]:" not in shown and _kernels_idle(lab) else 0
        if calm >= 2:
            return shown
        time.sleep(0.5)
    pytest.fail(f"still running after {within} s, prompts {prompts(page)}; the page shows:\n"
                f"{visible(page)}")


def errors_shown(page):
    """The text of every traceback or stderr output in the notebook."""
    return page.locator(f'.jp-OutputArea-output[data-mime-type="{STDERR}"]').all_inner_texts()


def save(page, path):
    """File > Save (Ctrl+S), then read what JupyterLab wrote."""
    before = path.stat().st_mtime_ns
    page.locator(".jp-Notebook").first.click()
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 10
    while path.stat().st_mtime_ns == before and time.monotonic() < deadline:
        time.sleep(0.2)
    return nbformat.read(path, as_version=4)


def saved_errors(nb):
    """Error outputs in a saved notebook: 'ValueError: boom'."""
    return [f"{o.ename}: {o.evalue}" for c in nb.cells if c.cell_type == "code"
            for o in c.outputs if o.output_type == "error"]


def test_setup_check_runs_from_the_ui(lab, page, cleanup_00):
    committed = NOTEBOOK.read_bytes()
    copy = lab.root / "nb" / NOTEBOOK.name
    code_cells = sum(c.cell_type == "code" for c in nbformat.read(copy, as_version=4).cells)
    start = time.monotonic()
    open_notebook(page, lab, NOTEBOOK.name)
    print(f"opened in {time.monotonic() - start:.1f} s")
    run_all(page)
    shown = wait_finished(page, lab, RUN_WITHIN)
    print(f"notebook 00 ran from the UI in {time.monotonic() - start:.1f} s")

    doctor = page.locator(".jp-RenderedMarkdown table", has_text="Docker engine").filter(
        has_text="wheelhouse").first
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    if doctor.count():
        doctor.scroll_into_view_if_needed(timeout=5000)
    page.screenshot(path=str(SCREENSHOT))

    assert shown == [f"[{i}]:" for i in range(1, code_cells + 1)], (
        f"not every cell ran once, in order: {shown}\n{visible(page)}")
    assert not errors_shown(page), f"errors in the notebook: {errors_shown(page)}"
    headers = doctor.locator("th").all_inner_texts()
    assert headers == ["check", "status", "detail", "fix"], (
        f"no doctor's table rendered (headers {headers}); the page shows:\n{visible(page)}")
    statuses = doctor.locator("tbody tr td:nth-child(2)").all_inner_texts()
    assert statuses and "FAIL" not in statuses, statuses
    saved = save(page, copy)  # what the kernel sent, as JupyterLab writes it (the copy only)
    assert [c.execution_count for c in saved.cells if c.cell_type == "code"] == list(
        range(1, code_cells + 1)), "the saved copy is not the run's"
    assert not saved_errors(saved)
    assert NOTEBOOK.read_bytes() == committed, "the test changed the committed notebook"


def test_an_error_is_seen(lab, page):
    """The checks above would notice a failing cell: a traceback on the page and in the file."""
    path = lab.root / "nb" / "fails.ipynb"
    nbformat.write(nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(s) for s in
               ('print("before")', 'raise ValueError("boom")', 'print("after")')],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}),
        path)
    open_notebook(page, lab, path.name)
    run_all(page)
    shown = wait_finished(page, lab, 30)
    assert shown[0] == "[1]:" and shown[2] == "[ ]:", shown  # the cell after the error never ran
    assert any("ValueError" in e and "boom" in e for e in errors_shown(page)), visible(page)
    assert saved_errors(save(page, path)) == ["ValueError: boom"]


LAB00 = ROOT / "solutions" / "00_docker_cli.ipynb"
LESSON01 = ROOT / "notebooks" / "01_containers_vs_vms.ipynb"
LEARNER_RUN_WITHIN = 240  # lab 00 to its end with the first part done: about 40 s, more when busy
LAB_SHOT, LESSON_SHOT = BUILD / "browser" / "00_docker_cli.png", BUILD / "browser" / "01_exercise.png"


def solved(source):
    """A solution cell as the learner would finish it: the region's answer, no marker lines."""
    return "\n".join(ln for ln in source.splitlines()
                     if not (labs.BEGIN.match(ln) or labs.END.match(ln) or labs.KEEP.match(ln)))


def type_into(page, index, text):
    """Click into the code cell at `index`, select what it holds and type `text` over it."""
    editor = page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".cm-content")
    editor.scroll_into_view_if_needed(timeout=5000)
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(text)  # as pasted: no auto-closed brackets or indents added
    page.keyboard.press("Escape")  # leave the editor, as after typing


def output_of(page, index):
    return page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-OutputArea").inner_text()


def learner_copy(lab_server, nb, name, owner):
    """The notebook as the learner opens it, in the server's folder, with OWNER set to `owner`."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = re.sub(r'^OWNER = "[^"]*"', f'OWNER = "{owner}"', cell.source, flags=re.M)
    nbformat.write(nb, lab_server.root / "nb" / name)
    return lab_server.root / "nb" / name


@pytest.fixture
def browser_owners(client):
    yield
    for owner in ("test_browser_lab00", "test_browser_01"):
        resources.cleanup(client, owner)


def test_a_learner_does_lab_00_part_one_from_the_ui(lab, page, browser_owners):
    """The learner's lab 00: the first part's commands typed into its cells, Run All, ✓ lines seen."""
    nb = labs.lab_of(LAB00)
    learner_copy(lab, nb, LAB00.name, "test_browser_lab00")
    answers = {c.id: solved(c.source) for c in nbformat.read(LAB00, as_version=4).cells
               if any(labs.BEGIN.match(ln) for ln in c.source.splitlines())}
    first = next(i for i, c in enumerate(nb.cells) if "check" in c.metadata.get("tags", []))
    open_notebook(page, lab, LAB00.name)
    for i, cell in enumerate(nb.cells[:first]):
        if cell.id in answers:
            type_into(page, i, answers[cell.id])
    run_all(page)
    wait_finished(page, lab, LEARNER_RUN_WITHIN)
    said = output_of(page, first)
    page.locator(".jp-Notebook .jp-Cell").nth(first).scroll_into_view_if_needed(timeout=5000)
    page.screenshot(path=str(LAB_SHOT))
    assert "✓ it answers GET /health" in said and "done: all" in said, f"{said}\n{visible(page)}"
    assert "not done yet" in output_of(page, next(
        i for i, c in enumerate(nb.cells) if "check" in c.metadata.get("tags", []) and i > first))
    assert not errors_shown(page), errors_shown(page)
    assert "removed" in output_of(page, len(nb.cells) - 1)  # its cleanup cell ran last


def test_a_learner_does_a_lesson_exercise_from_the_ui(lab, page, browser_owners):
    """Lesson 01's first exercise: its folded solution typed into the answer cell, its check ✓."""
    nb = nbformat.read(LESSON01, as_version=4)
    learner_copy(lab, nb, LESSON01.name, "test_browser_01")
    cells = [i for i, c in enumerate(nb.cells) if {"answer", "exercise"} & set(c.metadata.get("tags", []))]
    answer, check = cells[0], cells[1]
    folded = re.search(r"<details>.*?```python\n(.*?)```", nb.cells[check + 1].source, re.S)
    open_notebook(page, lab, LESSON01.name)
    type_into(page, answer, folded.group(1).rstrip("\n"))
    run_all(page)
    wait_finished(page, lab, LEARNER_RUN_WITHIN)
    said = output_of(page, check)
    page.locator(".jp-Notebook .jp-Cell").nth(check).scroll_into_view_if_needed(timeout=5000)
    page.screenshot(path=str(LESSON_SHOT))
    assert said.startswith("Exercise 01.1") and "done: all" in said and "✗" not in said, f"{said}\n{visible(page)}"
    assert not errors_shown(page), errors_shown(page)
