"""The chat behind a reverse proxy, under granian.

From ``examples/tutorial/``:
``granian --interface asgi deploy.proxied_granian:app --url-path-prefix /pinboard``.
"""

from granian.utils.proxies import wrap_asgi_with_proxy_headers
from step4_chat import app as chat

# Trust X-Forwarded-* headers only from the proxy's address.
app = wrap_asgi_with_proxy_headers(chat, trusted_hosts="127.0.0.1")
