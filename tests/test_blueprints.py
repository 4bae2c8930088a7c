"""Blueprints: routes under a prefix, registration options, nesting, and the errors they refuse."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from _docs import load_example

from trioweb import Blueprint, TrioWeb, render_template_string, request, url_for


def _shop() -> Blueprint:
    bp = Blueprint("shop", __name__, url_prefix="/shop")

    @bp.route("/items/<int:n>")
    async def item(n: int) -> dict[str, object]:
        return {"n": n, "endpoint": request.endpoint, "url": url_for(".item", n=n)}

    @bp.post("/cart")
    async def cart() -> str:
        return "added"

    return bp


async def test_blueprint_routes_are_prefixed_and_namespaced() -> None:
    """A blueprint's rules get its `url_prefix`, its endpoints its name; method shortcuts work."""
    app = TrioWeb(__name__)
    app.register_blueprint(_shop())
    async with app.test_client() as client:
        response = await client.get("/shop/items/3")
        assert await response.get_json() == {
            "n": 3,
            "endpoint": "shop.item",
            "url": "/shop/items/3",
        }
        assert (await client.post("/shop/cart")).status_code == 200
        assert (await client.get("/shop/cart")).status_code == 405
        assert (await client.get("/items/3")).status_code == 404


async def test_register_with_another_prefix_and_name() -> None:
    """`register_blueprint(bp, url_prefix=..., name=...)` overrides the prefix and the name, so
    one blueprint can be registered twice."""
    app = TrioWeb(__name__)
    bp = _shop()
    app.register_blueprint(bp)
    app.register_blueprint(bp, url_prefix="/store", name="store")
    async with app.test_client() as client:
        assert await (await client.get("/store/items/1")).get_json() == {
            "n": 1,
            "endpoint": "store.item",
            "url": "/store/items/1",
        }
        assert (await client.get("/shop/items/1")).status_code == 200
    assert set(app.blueprints) == {"shop", "store"}


async def test_blueprint_without_prefix() -> None:
    """A blueprint without a prefix registers its rules as written."""
    app = TrioWeb(__name__)
    bp = Blueprint("pages", __name__)

    @bp.route("/about")
    async def about() -> str:
        return url_for("pages.about")

    app.register_blueprint(bp)
    async with app.test_client() as client:
        assert await (await client.get("/about")).get_data() == b"/about"


@pytest.mark.parametrize(
    ("prefix", "rule", "path"),
    [
        ("/api/", "/users", "/api/users"),
        ("/api", "users", "/api/users"),
        ("/api", "/", "/api/"),
        ("/api", "", "/api"),
    ],
)
async def test_prefix_and_rule_are_joined_with_one_slash(prefix: str, rule: str, path: str) -> None:
    """The prefix and the rule are joined with exactly one slash; an empty rule is the prefix."""
    app = TrioWeb(__name__)
    bp = Blueprint("api", __name__, url_prefix=prefix)

    @bp.route(rule)
    async def view() -> str:
        return "here"

    app.register_blueprint(bp)
    async with app.test_client() as client:
        assert await (await client.get(path)).get_data() == b"here"


async def test_nested_blueprints() -> None:
    """A blueprint registered on another gets the joined prefix and the endpoint
    `parent.child.view`; `request.blueprint` is `parent.child`."""
    app = TrioWeb(__name__)
    parent = Blueprint("parent", __name__, url_prefix="/parent")
    child = Blueprint("child", __name__, url_prefix="/child")

    @child.route("/view")
    async def view() -> dict[str, object]:
        return {
            "endpoint": request.endpoint,
            "blueprint": request.blueprint,
            "url": url_for("parent.child.view"),
            "relative": url_for(".view"),
        }

    parent.register_blueprint(child)
    app.register_blueprint(parent)
    async with app.test_client() as client:
        assert await (await client.get("/parent/child/view")).get_json() == {
            "endpoint": "parent.child.view",
            "blueprint": "parent.child",
            "url": "/parent/child/view",
            "relative": "/parent/child/view",
        }
    assert set(app.blueprints) == {"parent", "parent.child"}


async def test_nested_blueprint_registration_options() -> None:
    """`parent.register_blueprint(child, url_prefix=..., name=...)` renames and re-prefixes the
    child; a child without a prefix takes the parent's."""
    app = TrioWeb(__name__)
    parent = Blueprint("parent", __name__, url_prefix="/p")
    child = Blueprint("child", __name__, url_prefix="/c")
    bare = Blueprint("bare", __name__)

    @child.route("/x")
    async def x() -> str:
        return request.endpoint or ""

    @bare.route("/y")
    async def y() -> str:
        return request.endpoint or ""

    parent.register_blueprint(child, url_prefix="/renamed", name="kid")
    parent.register_blueprint(bare)
    app.register_blueprint(parent)
    async with app.test_client() as client:
        assert await (await client.get("/p/renamed/x")).get_data() == b"parent.kid.x"
        assert await (await client.get("/p/y")).get_data() == b"parent.bare.y"


async def test_same_name_twice_is_value_error() -> None:
    """Registering a second blueprint under a name already in use is a ValueError."""
    app = TrioWeb(__name__)
    app.register_blueprint(Blueprint("shop", __name__))
    with pytest.raises(ValueError, match="'shop' is already registered; pass name="):
        app.register_blueprint(Blueprint("shop", __name__))


async def test_duplicate_endpoint_in_a_blueprint_is_value_error() -> None:
    """Two functions under the same endpoint of a blueprint fail when it is registered."""
    app = TrioWeb(__name__)
    bp = Blueprint("bp", __name__)

    async def first() -> str:
        return "1"

    async def second() -> str:
        return "2"

    bp.add_url_rule("/1", "same", first)
    bp.add_url_rule("/2", "same", second)
    with pytest.raises(ValueError, match=r"endpoint 'bp\.same' is already used"):
        app.register_blueprint(bp)


@pytest.mark.parametrize("name", ["", "a.b"])
async def test_blueprint_name_must_be_non_empty_without_dot(name: str) -> None:
    """A blueprint's name may not be empty or contain a dot."""
    with pytest.raises(ValueError, match="non-empty and without a dot"):
        Blueprint(name, __name__)


async def test_blueprint_registration_errors() -> None:
    """A blueprint refuses a dotted endpoint, a missing or sync view, and itself as a child."""
    bp = Blueprint("bp", __name__)

    async def view() -> str:
        return "v"

    def sync_view() -> str:
        return "s"

    with pytest.raises(ValueError, match="may not contain a dot"):
        bp.add_url_rule("/x", "a.b", view)
    with pytest.raises(TypeError, match="needs a view_func"):
        bp.add_url_rule("/x")
    with pytest.raises(TypeError, match="async def"):
        bp.route("/s")(sync_view)
    with pytest.raises(ValueError, match="on itself"):
        bp.register_blueprint(bp)


async def test_routes_added_after_registration_are_an_error() -> None:
    """A route or nested blueprint added to a registered blueprint raises, not silently lost."""
    app = TrioWeb(__name__)
    bp = Blueprint("late", __name__)
    app.register_blueprint(bp)

    async def view() -> str:
        return "never routed"  # pragma: no cover

    with pytest.raises(RuntimeError, match="already registered"):
        bp.add_url_rule("/late", view_func=view)
    with pytest.raises(RuntimeError, match="already registered"):
        bp.register_blueprint(Blueprint("child", __name__))


async def test_app_wide_template_registrations_from_a_blueprint() -> None:
    """A blueprint's `app_template_filter`/`_global`/`_test` (and `add_app_*` forms) and
    `app_context_processor` apply to every template of the app once it is registered, also
    when registered twice under two names (once)."""
    app = TrioWeb(__name__)
    bp = Blueprint("bp", __name__)

    @bp.app_template_filter("twice")
    def twice(value: str) -> str:
        return value * 2

    @bp.app_template_global()
    def site() -> str:
        return "Site"

    @bp.app_template_test("short")
    def is_short(value: str) -> bool:
        return len(value) < 3

    bp.add_app_template_filter(str.upper, "up")
    bp.add_app_template_global(lambda: 1, "one")
    bp.add_app_template_test(lambda value: value == 1, "one")

    @bp.app_context_processor
    async def user() -> dict[str, str]:
        return {"user": "ada"}

    @app.get("/")
    async def index() -> str:
        return await render_template_string(
            "{{ 'ab'|twice|up }} {{ site() }} {{ 'ab' is short }} {{ one() is one }} {{ user }}"
        )

    app.register_blueprint(bp)
    app.register_blueprint(bp, name="again")
    assert len(app.context_processors) == 1
    async with app.test_client() as client:
        assert await (await client.get("/")).get_data() == b"ABAB Site True True ada"


async def test_app_wide_registrations_after_registration_are_an_error() -> None:
    """Adding an app-wide template function to a blueprint already registered raises
    RuntimeError: the app would never see it."""
    app = TrioWeb(__name__)
    bp = Blueprint("bp", __name__)
    app.register_blueprint(bp)
    with pytest.raises(RuntimeError, match="already registered"):
        bp.add_app_template_filter(str.upper)
    with pytest.raises(RuntimeError, match="already registered"):
        bp.app_context_processor(lambda: {})


# As the docs show (docs/examples/blueprints.py) ---------------------------------------------------

blueprints_example = load_example("blueprints")


@pytest.mark.parametrize(
    ("path", "status", "api", "body"),
    [
        ("/", 200, False, None),
        ("/api/status", 200, True, {"status": "ok", "users": "/api/users/"}),
        ("/api/users/", 200, True, {"users": ["/api/users/1", "/api/users/2"]}),
        ("/api/users/2", 200, True, {"id": 2, "name": "grace"}),
        ("/api/users/3", 404, True, {"error": "Not Found", "status": 404}),
        ("/api/nothing", 404, False, None),
    ],
)
async def test_blueprints(path: str, status: int, api: bool, body: Any) -> None:
    """Blueprint prefixes, nesting, url_for, hooks and error handlers work as the how-to says."""
    with trio.fail_after(5):
        async with blueprints_example.app.test_client() as client:
            response = await client.get(path)
            assert response.status_code == status
            assert ("X-API-Version" in response.headers) is api
            if body is not None:
                assert await response.get_json() == body
