"""An app module that exists but imports a module that does not (``tests.app``, a prefix of
this module's name, which must not be mistaken for this module being missing)."""

import tests.app  # noqa: F401

app = None
