"""An App with mounted apps whose startup fails: servers must stop, saying why."""

from __future__ import annotations

from microasgi import App

admin = App()
api = App()

app = App()
app.mount("/admin", admin)
app.mount("/api", api)


@app.on_startup
async def connect() -> None:
    """The database a real app would connect to is not there."""
    raise ConnectionError("database unreachable at startup")
