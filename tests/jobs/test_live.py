"""Following a job over its WebSocket, as a script does: to its end, and across a dropped
connection, with nothing missed and nothing doubled (Redis channel layer and embedded polling)."""

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import websockets

from jobs.models import Job, State
from portal.accounts.services import token_create
from tests.conftest import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.database]


def run(coroutine):
    """asyncio.run in a thread of its own: Playwright's sync API may hold a running loop in
    this one (the browser tests share the session)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def ws_url(stack, job_id, after=0):
    return stack.url.replace("http://", "ws://") + f"/ws/jobs/{job_id}/?after={after}"


async def follow(url, key, until_id=None, seen=None, scheme="Token"):
    """Read events until the job ends (or until id `until_id`), appending to `seen`."""
    seen = [] if seen is None else seen
    headers = {"Authorization": f"{scheme} {key}"} if key else {}
    async with websockets.connect(url, additional_headers=headers, open_timeout=10) as socket:
        while True:
            event = json.loads(await asyncio.wait_for(socket.recv(), timeout=60))
            seen.append(event)
            if until_id is not None and event["id"] >= until_id:
                # The connection drops (no closing handshake: a polite close would wait up to
                # 10 s for the server's reply, queued behind the events this client stopped
                # reading).
                socket.transport.abort()
                return seen
            if event["type"] == "state" and event["state"] in ("succeeded", "failed", "cancelled"):
                return seen


def test_a_script_follows_a_job_to_its_end_and_resumes_after_a_drop(stack, project, alice):
    stack.add_nodes("node-a")
    _, key = token_create(user=alice, name="script")
    pk = stack.client(alice).submit(project, params={"seconds": 4, "lines": 300})["id"]

    seen = run(follow(ws_url(stack, pk), key, until_id=40))  # then the connection drops
    assert [e["id"] for e in seen] == list(range(1, 41))
    # Resumed by a client that sends its token the OAuth way.
    run(follow(ws_url(stack, pk, after=seen[-1]["id"]), key, seen=seen, scheme="Bearer"))

    wait_until(lambda: Job.objects.get(pk=pk).state == State.SUCCEEDED, 30, what="the job")
    stored = list(Job.objects.get(pk=pk).events.order_by("seq").values_list("seq", "type"))
    assert [(e["id"], e["type"]) for e in seen] == stored  # every event once, in order
    lines = [e["line"] for e in seen if e["type"] == "log"]
    assert [line for line in lines if line.startswith("line ")] == [f"line {n}" for n in range(300)]
    assert any(e["type"] == "metric" and e["name"] == "ticks" for e in seen)
    assert seen[-1] == {**seen[-1], "type": "state", "state": "succeeded"}


def test_a_stream_is_refused_to_strangers_and_to_no_one(stack, project, alice, charlie):
    stack.add_nodes("node-a")
    pk = stack.client(alice).submit(project, params={"seconds": 1})["id"]
    _, stranger = token_create(user=charlie, name="nosy")

    async def close_code(key):
        try:
            await follow(ws_url(stack, pk), key)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        except websockets.InvalidStatus as refused:
            return refused.response.status_code
        return "open"

    assert run(close_code(stranger)) == 4404
    assert run(close_code(None)) == 4401
    assert run(close_code("spt_not-a-token")) == 4401
