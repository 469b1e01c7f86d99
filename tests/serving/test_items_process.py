"""``recops serve --workers 2`` grows by new items under load, through its catalog file.

Which worker takes a connection is up to the kernel: a check that must hold on every
worker asks on many fresh connections (16 of them all land on one of two workers
with probability 2^-15).
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from recops.serving.process import ServerProcess

from .conftest import ADMIN_TOKEN, N_ITEMS, START, make_repository

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
NOW = START + 30 * 86400
FRESH_CONNECTIONS = 16


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("catalog") / "items.jsonl"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, trained_artifact: Path, catalog: Path
) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("items")
    process = ServerProcess(
        make_repository(tmp / "models", trained_artifact),
        tmp / "events.sqlite3",
        ("--workers", "2"),
        {
            "RECOPS_ADMIN_TOKEN": ADMIN_TOKEN,
            "RECOPS_CATALOG_UPDATES_PATH": str(catalog),
            "RECOPS_WORKER_TIMEOUT_S": "2",
        },
    )
    with process.start(90.0):
        _until(
            lambda: len(_fresh(process, "GET", "/v1/models").json()["workers"]) == 2, "2 workers"
        )
        yield process


def _fresh(server: ServerProcess, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request on a connection of its own (the kernel picks the worker)."""
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        return client.request(method, path, **kwargs)


def _until(done: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if done():
                return
        except (httpx.TransportError, KeyError):
            pass  # a worker restarting
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout} s")
        time.sleep(0.1)


def _everywhere(server: ServerProcess, item: str) -> bool:
    """Whether every worker serves ``item`` (asked on many fresh connections)."""
    body = {"item_id": item, "k": 5, "now": NOW}
    return all(
        _fresh(server, "POST", "/v1/similar", json=body).status_code == 200
        for _ in range(FRESH_CONNECTIONS)
    )


def test_lines_another_writer_appends_reach_every_worker(
    server: ServerProcess, catalog: Path
) -> None:
    with open(catalog, "a") as f:
        for j in range(5):
            item = {"item_id": f"file-{j}", "title": f"tech story {j}", "categories": ["tech"]}
            f.write(json.dumps(item) + "\n")
    _until(lambda: all(_everywhere(server, f"file-{j}") for j in (0, 4)), "file items everywhere")


def test_items_added_under_load_fail_no_request(server: ServerProcess) -> None:
    known = [f"i{j}" for j in range(N_ITEMS)]
    answers: list[int] = []
    stop = threading.Event()

    def hammer(seed: int) -> None:
        rng = random.Random(seed)
        # Keep-alive connections stay on one worker; four of them reach both.
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            while not stop.is_set():
                item = rng.choice(known)
                if rng.random() < 0.5:
                    body = {"user_id": f"u{rng.randrange(40)}", "history": [item], "now": NOW}
                    path = "/v1/recommend"
                else:
                    body, path = {"item_id": item, "k": 10, "now": NOW}, "/v1/similar"
                try:
                    answers.append(client.post(path, json=body).status_code)
                except httpx.TransportError:
                    answers.append(-1)

    threads = [threading.Thread(target=hammer, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        for batch in range(5):
            items = [
                {"item_id": f"load-{batch}-{j}", "title": f"sports {j}", "categories": ["sports"]}
                for j in range(20)
            ]
            reply = _fresh(server, "POST", "/v1/admin/items", json={"items": items}, headers=AUTH)
            assert reply.status_code == 200, reply.text
            assert reply.json()["versions"][0]["added"] == 20
            # Asked for by the hammers once every worker serves them.
            last = items[-1]["item_id"]
            _until(lambda item=last: _everywhere(server, item), f"{last} everywhere")  # type: ignore[misc]
            known.extend(i["item_id"] for i in items)
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    failed = [a for a in answers if a != 200]
    assert len(answers) > 200 and not failed, (
        f"{len(failed)} of {len(answers)} failed: {failed[:5]}"
    )


def test_a_restarted_worker_applies_the_whole_file(server: ServerProcess, catalog: Path) -> None:
    with open(catalog, "a") as f:
        f.write(json.dumps({"item_id": "before-restart"}) + "\n")
    _until(lambda: _everywhere(server, "before-restart"), "before-restart everywhere")
    workers = _fresh(server, "GET", "/v1/models").json()["workers"]
    victim = workers[0]["pid"]
    os.kill(victim, signal.SIGKILL)

    def replaced() -> bool:
        pids = {w["pid"] for w in _fresh(server, "GET", "/v1/models").json()["workers"]}
        return len(pids) == 2 and victim not in pids

    _until(replaced, "restarted worker", timeout=60.0)
    for item in ("file-0", "before-restart"):
        assert _everywhere(server, item), f"{item} is not served by the restarted worker"
