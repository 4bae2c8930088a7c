"""Routing: URL rules, variables and converters, methods, query strings and ``url_for``."""

from trioweb import TrioWeb, request, url_for

app = TrioWeb(__name__)


@app.route("/")
async def index() -> str:
    return "Index\n"


@app.get("/users/<int:user_id>")
async def show_user(user_id: int) -> dict[str, int]:
    return {"id": user_id}


@app.get("/files/<path:name>")
async def show_file(name: str) -> str:
    return f"File {name}\n"


@app.route("/items/", methods=["GET", "POST"])
async def items() -> tuple[str, int]:
    if request.method == "POST":
        return "Created\n", 201
    return "All items\n", 200


@app.get("/search")
async def search() -> dict[str, object]:
    return {
        "q": request.args.get("q", ""),
        "page": request.args.get("page", 1, type=int),
        "tags": request.args.getlist("tag"),
    }


@app.get("/links")
async def links() -> dict[str, str]:
    return {
        "user": url_for("show_user", user_id=7),
        "search": url_for("search", q="trio", page=2),
        "absolute": url_for("index", _external=True),
    }
