"""The gateway's SSH endpoint: connectors (certificates) and, later, viewers (kbdint TOTP)."""
