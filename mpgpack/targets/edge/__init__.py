"""The edge target: the `mpg-edge` device runner (LiteRT, numpy) and its offline bundle builder.

Device side (shipped in the tarball): device.py (the command), rows.py (CSV / JSON lines in,
checked against the manifest schema). Build side (this machine only): pack.py, wheel.py, cli.py,
and emulate.py + aarch64_userland.sh for the emulated Raspberry Pi check.
"""
