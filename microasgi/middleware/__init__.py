"""Pure ASGI middleware shipped with microasgi: ``cors``, ``gzip``, ``sessions``,
``authentication``, ``trustedhost``, ``httpsredirect`` and ``proxyheaders``."""
