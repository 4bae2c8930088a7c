"""The chat example: rooms, live messages, who is online, on one process or many.

``app.py`` is the app (``trioweb run --app examples.chat.app:app``), ``templates/`` its page and
``static/`` the page's script and style. docs/tutorial_chat.rst builds it step by step.
"""
