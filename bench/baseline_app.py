"""The baseline: a bare Flask app that answers any POST under /hooks/... with "ok".

It reads nothing, parses nothing and stores nothing; bench/run.py serves it under
gunicorn with exactly the worker settings the receiver gets, so the receiver's
throughput can be stated as a ratio of this one's on the same machine and load.

    gunicorn --pythonpath bench baseline_app:app
"""

from flask import Flask

app = Flask(__name__)


@app.post("/hooks/<path:rest>")
def hook(rest: str):
    return "ok"
