"""Store backends behind the ``gateway.core.ports.Store`` port: embedded SQLite and Redis."""

from gateway.store.embedded import EmbeddedStore
from gateway.store.redis import RedisStore

__all__ = ["EmbeddedStore", "RedisStore"]
