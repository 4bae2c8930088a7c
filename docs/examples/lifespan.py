"""Work that outlives a request: a queue drained by a worker task in the app nursery."""

import trio

from trioweb import TrioWeb, current_app, has_request_context, request

app = TrioWeb(__name__)


class Jobs:
    """The job queue, opened by ``before_serving`` and closed by ``after_serving``."""

    queue: trio.MemorySendChannel[str]
    drained: trio.Event
    done: list[str]


jobs = Jobs()
welcomed: list[str] = []


@app.before_serving
async def start_worker() -> None:
    send, receive = trio.open_memory_channel[str](100)
    jobs.queue, jobs.drained, jobs.done = send, trio.Event(), []
    app.nursery.start_soon(worker, receive)


async def worker(queue: trio.MemoryReceiveChannel[str]) -> None:
    async with queue:
        async for job in queue:
            await trio.lowlevel.checkpoint()  # stands in for the real work
            jobs.done.append(job)
    jobs.drained.set()


@app.after_serving
async def stop_worker() -> None:
    await jobs.queue.aclose()  # the worker finishes the queued jobs, then returns
    await jobs.drained.wait()


@app.post("/jobs")
async def submit_job() -> tuple[str, int]:
    job = await request.get_data(as_text=True)
    await jobs.queue.send(job)  # waits while the queue is full: backpressure
    return "Queued\n", 202


async def send_welcome(name: str) -> None:
    assert not has_request_context()  # the request has ended by now
    current_app.logger.info("welcoming %s", name)
    welcomed.append(name)


@app.post("/welcome/<name>")
async def welcome(name: str) -> tuple[str, int]:
    app.add_background_task(send_welcome, name)
    return "Welcome mail on its way\n", 202
