"""The chat behind a reverse proxy, under hypercorn.

From ``examples/tutorial/``: ``hypercorn deploy.proxied_hypercorn:app --root-path /pinboard``.
"""

from hypercorn.middleware import ProxyFixMiddleware
from step4_chat import app as chat

# Trust one proxy hop: the X-Forwarded-* headers that nginx sets, and no one else's.
app = ProxyFixMiddleware(chat, mode="legacy", trusted_hops=1)
