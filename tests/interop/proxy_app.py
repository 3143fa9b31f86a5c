"""What ``test_proxy_headers`` serves behind nginx: who the app thinks is asking, and how."""

from __future__ import annotations

from typing import Any

from microasgi import App, Request
from microasgi.middleware.proxyheaders import ProxyHeadersMiddleware

app = App()


@app.get("/whoami")
async def whoami(request: Request) -> dict[str, Any]:
    """The client's address, the scheme and the URL, as the app sees them."""
    client = request.client
    return {
        "client": client.host if client else None,
        "scheme": request.scheme,
        "url": str(request.url),
    }


app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=["127.0.0.1"])
