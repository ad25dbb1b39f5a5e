"""gunicorn settings for the baseline: none.

Without `-c`, gunicorn reads ./gunicorn.conf.py from the directory it starts in, which
would give the bare app the receiver's settings file (its access log, its header wire
patch and its start-up migrations). bench/run.py starts the baseline with this empty
file instead; the worker settings both servers share come from the command line.
"""
