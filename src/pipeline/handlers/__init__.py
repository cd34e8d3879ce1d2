"""Lambda entry points. Each is thin: parse the envelope, call the package, report partial batch failures."""
