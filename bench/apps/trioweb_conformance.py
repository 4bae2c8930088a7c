"""trioweb's echo for the Autobahn TestSuite (``python -m bench.conformance``): the benchmark's
trioweb app with a 16 MiB message limit.

Group 9 of the suite sends messages of up to 16 MiB, which is Hypercorn's own default limit;
trioweb's default ``WEBSOCKET_MAX_MESSAGE_SIZE`` is 1 MiB, and a server that answers a 4 MiB
message with 1009 (as it should, under that limit) fails those cases.
"""

from __future__ import annotations

from .trioweb_app import app

app.config["WEBSOCKET_MAX_MESSAGE_SIZE"] = 16 * 1024 * 1024
