"""Tutorial step 1: an app with a few routes.

Run it with ``python -m microasgi step1_routes:app`` and open http://127.0.0.1:8000.
"""

from microasgi import App, HTMLResponse, Request

app = App()


@app.get("/")
async def home(request: Request) -> HTMLResponse:
    """The home page, as HTML."""
    return HTMLResponse("<h1>Pinboard</h1><p>Try <a href='/hello/world'>/hello/world</a>.</p>")


@app.get("/hello/{name}")
async def hello(request: Request, name: str) -> str:
    """Greet ``name``: a str becomes a text/plain response."""
    return f"Hello, {name}!"


@app.route("/ping", methods=["GET", "POST"])
async def ping(request: Request) -> str:
    """One handler for two methods; HEAD comes free with GET."""
    return f"pong ({request.method})"
