"""The smallest microasgi app: ``python -m microasgi examples.hello:app``."""

from microasgi import App, Request

app = App()


@app.get("/")
async def index(request: Request) -> str:
    """Greet the visitor."""
    return "Hello, world!"


@app.get("/users/{user_id:int}")
async def user(request: Request, user_id: int) -> dict[str, int]:
    """Path parameters arrive converted, as keyword arguments."""
    return {"id": user_id}
