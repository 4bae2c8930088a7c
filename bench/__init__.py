"""trioweb's benchmark harness: the same websocket app in four targets, measured side by side.

``python -m bench.run`` (or ``tox -e bench``) runs it; see ``bench/run.py`` for the method and
``docs/performance.rst`` for the results. Nothing in ``trioweb`` imports this package, and its
peers (quart-trio, Starlette, picows, uvloop) are installed only in the bench environment.
"""
