"""trioweb's connection layer for Hypercorn's trio worker (issue 8): Hypercorn's configuration,
its h11/h2/wsproto state machines and ASGI handling stay; trioweb owns the trio-side glue and the
per-stream fixes that keep hostile or unlucky clients from crashing, wedging or outlasting the
server. See the modules' theories of operation:

* :mod:`._limits`: the settings the layer enforces, read from the app's config;
* :mod:`._protocol`: the per-stream protocol fixes (h11, h2, websocket streams);
* :mod:`._server`: the accept loop, one task per connection, reads, sends, shutdown.
"""
