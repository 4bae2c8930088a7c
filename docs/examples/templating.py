"""Template filters, globals, tests and context processors, for the app and from a blueprint."""

from datetime import date

from trioweb import Blueprint, TrioWeb, render_template_string, request

app = TrioWeb(__name__)
shop = Blueprint("shop", __name__, url_prefix="/shop")


@app.template_filter("money")
def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d} EUR"


@app.template_test("cheap")
def is_cheap(cents: int) -> bool:
    return cents < 1000


@app.template_global()
def this_year() -> int:
    return date.today().year


@app.context_processor
async def visitor() -> dict[str, str]:
    return {"visitor": request.headers.get("X-User", "guest")}  # every template


@shop.context_processor
def shop_name() -> dict[str, str]:
    return {"heading": "The shop"}  # only templates of the shop's views


@shop.app_template_filter()
def shout(text: str) -> str:  # every template of the app, once shop is registered
    return text.upper()


PAGE = (
    "{{ heading|default('Home')|shout }} for {{ visitor }}:"
    " {{ price|money }}{% if price is cheap %} (cheap){% endif %}, {{ this_year() > 2000 }}"
)


@app.get("/")
async def home() -> str:
    return await render_template_string(PAGE, price=12345)


@shop.get("/")
async def shop_home() -> str:
    return await render_template_string(PAGE, price=999)


app.register_blueprint(shop)
