"""fedserver: a self-hostable ActivityPub server with opt-in, revocable AI-training consent."""

__version__ = "0.1.0"
SOFTWARE_NAME = "fedserver"
