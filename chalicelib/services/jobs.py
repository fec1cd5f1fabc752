"""The deferred jobs the API queues and the worker runs (services/worker.py), as the
queue carries them: {"job": <kind>, "session": <id>[, "file": <id>]}."""

VERIFY_FILE = "verify-file"
PUBLISH = "publish"
