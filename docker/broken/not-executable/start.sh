#!/bin/sh
# Start the model service (a wrapper script, as many images have one).
set -eu
echo "starting gunicorn with ${WORKERS:-2} workers"
exec gunicorn --config gunicorn.conf.py 'app:create_app()'
