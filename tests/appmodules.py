"""docker/app's scripts (app.py, train.py, convert.py) imported as modules, once, for the tests.

docker/app is a folder of scripts, not a package; test files share one copy of each module
(so that monkeypatching one is seen by all), named model_service_<name>.
"""

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from workbook.resources import free_port

APP_DIR = Path(__file__).resolve().parents[1] / "docker" / "app"
# The service's settings (environment variables): tests start without any of them.
SETTINGS = ["MODEL_PATH", "MODEL_SHA256", "MAX_BATCH", "LOG_LEVEL", "PORT", "WORKERS",
            "REDIS_URL", "CACHE_TTL", "API_TOKEN", "API_TOKEN_FILE"]


def load(name):
    """docker/app/<name>.py as the module model_service_<name>."""
    module_name = f"model_service_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, APP_DIR / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


BIN = Path(sys.executable).parent  # gunicorn from the same virtual environment


def run_env(**settings):
    """This environment without the service's settings, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    env.update({k: str(v) for k, v in settings.items()})
    return env


def gunicorn(model, port, log, **settings):
    """Start gunicorn from docker/app with its config, bound to 127.0.0.1 only."""
    return subprocess.Popen(
        [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
         "app:create_app()"], cwd=APP_DIR, stdout=log, stderr=subprocess.STDOUT,
        env=run_env(MODEL_PATH=model, PORT=port, **settings))


@contextlib.contextmanager
def gunicorn_server(model, log_path, **settings):
    """gunicorn serving `model` until /health answers; yields (url, process); always stopped."""
    port = free_port()
    with open(log_path, "wb") as log:
        process = gunicorn(model, port, log, **settings)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                urllib.request.urlopen(f"{url}/health", timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # gunicorn's quick shutdown
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
