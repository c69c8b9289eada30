#!/bin/sh
# Say what starts, then replace this shell with the service.
set -eu
echo "model service: ${WORKERS:-2} workers on port ${PORT:-5000}"
exec gunicorn --config gunicorn.conf.py 'app:create_app()'
