"""rcgate: a remote-control session gateway with PAM-style recording."""

__version__ = "0.1.0"
