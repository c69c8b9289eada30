"""gunicorn settings for the model service, read from environment variables.

    gunicorn --config gunicorn.conf.py 'app:create_app()'

PORT (default 5000), WORKERS (default 2), LOG_LEVEL (default info),
RELOAD=1 (development: restart the workers when the code changes; docker/compose/compose.dev.yaml).
"""

import os
import sys

from gunicorn.glogging import Logger

# All interfaces: inside a container, the published port arrives on the container's own
# address, not on 127.0.0.1. On a host, override with --bind 127.0.0.1:PORT.
bind = f"0.0.0.0:{os.environ.get('PORT') or 5000}"
workers = int(os.environ.get("WORKERS") or 2)

# Load the model once, in the master, before forking the workers: they share its memory
# copy-on-write, start at once, and a refused model stops the master before any worker
# starts (one clear log line, exit code 3) instead of every worker failing in turn.
# RELOAD=1 turns preloading off: a preloaded app would keep its old code after a reload.
reload = os.environ.get("RELOAD") == "1"
preload_app = not reload

loglevel = os.environ.get("LOG_LEVEL") or "info"
accesslog = None  # the app logs each request itself, as one JSON line


class StdoutLogger(Logger):
    """gunicorn's own messages on stdout, beside the app's lines (its "-" means stderr)."""

    def setup(self, cfg):
        """Set up as usual, then point the error log's stream handlers at stdout."""
        super().setup(cfg)
        for handler in self.error_log.handlers:
            if getattr(handler, "stream", None) is sys.stderr:
                handler.setStream(sys.stdout)


logger_class = StdoutLogger
errorlog = "-"

# No control socket ($HOME/.gunicorn/gunicorn.ctl by default): Docker manages the process,
# and two servers on one host would fight over that one path.
control_socket_disable = True

# A prediction takes milliseconds: a worker silent for 30 s is stuck, so restart it.
timeout = 30
graceful_timeout = 10  # on SIGTERM (docker stop), finish requests in flight for up to 10 s
