"""The web app and HTTP API (``accord serve``): see accord.web.app and docs/web.md.

Nothing in accord imports this package except the CLI; it drives the engine only through its
public methods and reads the store through its protocol.
"""
