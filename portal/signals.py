"""The portal's own signals, for the apps above it to act on."""

from django.dispatch import Signal

# `manage.py serve` is starting the web server: an app may load, on a thread of its own, what
# answering its requests needs (jobs/apps.py: the job kinds' `warm_up`).
server_starting = Signal()
