"""The core every part of mpgpack builds on: the bundle format, the typed schema, the
runtime runners, the row rules and the registry. Standard library + numpy only (runtimes are
imported lazily), so the API host and the device can import it."""
