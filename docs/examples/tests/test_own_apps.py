"""Tests that build an app of their own: background tasks, and a startup that fails."""

import pytest
import trio.testing

from trioweb import LifespanError, TrioWeb


async def test_background_task_runs() -> None:
    """A background task started by a view runs once the view has answered."""
    app = TrioWeb(__name__)
    sent: list[str] = []

    async def send_welcome(name: str) -> None:
        sent.append(name)

    @app.post("/welcome/<name>")
    async def welcome(name: str) -> tuple[str, int]:
        app.add_background_task(send_welcome, name)
        return "", 202

    async with app.test_client() as client:
        response = await client.post("/welcome/ada")
        assert response.status_code == 202
        await trio.testing.wait_all_tasks_blocked()
        assert sent == ["ada"]


async def test_failing_background_task_fails_the_test() -> None:
    """An exception in a background task is raised when the client exits."""
    app = TrioWeb(__name__)

    async def send_welcome(name: str) -> None:
        raise ConnectionRefusedError("the mail server is down")

    @app.post("/welcome/<name>")
    async def welcome(name: str) -> tuple[str, int]:
        app.add_background_task(send_welcome, name)
        return "", 202

    with pytest.raises(ConnectionRefusedError, match="mail server"):
        async with app.test_client() as client:
            await client.post("/welcome/ada")


async def test_failing_startup_is_reported() -> None:
    """A before_serving function that raises makes the client raise LifespanError."""
    app = TrioWeb(__name__)

    @app.before_serving
    async def connect() -> None:
        raise ConnectionRefusedError("the database is down")

    with pytest.raises(LifespanError) as info:
        async with app.test_client():
            pass
    assert info.value.phase == "startup"
    assert "the database is down" in info.value.message
