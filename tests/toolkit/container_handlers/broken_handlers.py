"""A handler module whose import fails: the init phase reports it (``/init/error``)."""

raise RuntimeError("this module cannot be imported")
