"""mpgpack: one Auto MPG model, packed for a browser, an edge device and an HTTP API."""

__version__ = "0.1.0"
