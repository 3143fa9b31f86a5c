"""Pure ASGI middleware shipped with microasgi: ``cors.CORSMiddleware``, ``gzip.GZipMiddleware``."""
