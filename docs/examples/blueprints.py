"""Blueprints: an API grouped under ``/api``, with its own hook and error handler."""

from werkzeug.exceptions import HTTPException

from trioweb import Blueprint, Response, TrioWeb, abort, url_for

api = Blueprint("api", __name__, url_prefix="/api")
users = Blueprint("users", __name__, url_prefix="/users")

USERS = {1: "ada", 2: "grace"}


@users.get("/")
async def list_users() -> dict[str, list[str]]:
    return {"users": [url_for(".show", user_id=user_id) for user_id in USERS]}


@users.get("/<int:user_id>")
async def show(user_id: int) -> dict[str, object]:
    if user_id not in USERS:
        abort(404)
    return {"id": user_id, "name": USERS[user_id]}


@api.get("/status")
async def status() -> dict[str, str]:
    return {"status": "ok", "users": url_for("api.users.list_users")}


@api.after_request
async def mark_api(response: Response) -> Response:
    response.headers["X-API-Version"] = "1"
    return response


@api.errorhandler(HTTPException)
async def api_error(error: HTTPException) -> tuple[dict[str, object], int]:
    return {"error": error.name, "status": error.code}, error.code or 500


api.register_blueprint(users)

app = TrioWeb(__name__)
app.register_blueprint(api)


@app.get("/")
async def index() -> str:
    return "Home page; the API is under /api\n"
