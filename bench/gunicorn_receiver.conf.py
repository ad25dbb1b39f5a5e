"""gunicorn settings for benchmarking the receiver: the repository's gunicorn.conf.py,
executed unchanged (its settings, `wire.install()` and its `on_starting` hook that runs
the migrations and creates the `default` inbox), with only the access log turned off.

gunicorn.conf.py reads `accesslog` from RECEIVER_ACCESS_LOG (default "-", stdout); gunicorn
has no string meaning "no access log" (an empty value is taken as a file name), so the
benchmark sets `accesslog = None` here, as the baseline runs without one too. bench/run.py
passes the worker settings on the command line to both servers, which overrides the values
read here, so both run with identical settings.
"""

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CONF = os.path.join(_ROOT, "gunicorn.conf.py")
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

with open(_CONF, encoding="utf-8") as _file:
    exec(compile(_file.read(), _CONF, "exec"))

accesslog = None
