"""Small apps that the subprocess tests serve (``tests.apps.basic:app``, ...)."""
