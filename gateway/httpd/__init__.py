"""The HTTP edge: aiohttp application, JSON API under /api/, pages, security middleware."""
