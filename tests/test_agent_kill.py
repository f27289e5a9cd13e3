"""The whole agent killed with -9 while it captures and syncs: every capture it had queued reaches
the server after a restart, and none arrives twice."""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.agent_live import admin_token, api, free_port, live_server, register_machine
from tests.running import clean_env, eventually, tagtrain_exe

pytestmark = pytest.mark.slow
FRAMES = 300  # distinct pictures: the server stores equal bytes once, so each frame must differ


def distinct_frames(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(7)
    for i in range(FRAMES):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(
            folder / f"{i:04d}.png"
        )
    return folder


def captured(url: str, token: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    with api(url, token) as client:
        while True:
            params: dict[str, Any] = {"source": "machine", "limit": 500}
            if cursor:
                params["cursor"] = cursor
            page = client.get("/api/v1/images", params=params).json()
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return items


def queued_ids(queue: Path) -> set[str]:
    return {p.stem.split("-", 1)[1] for p in queue.glob("*.json") if "-" in p.stem}


def start_agent(url: str, key: str, state: Path, log: Path) -> subprocess.Popen[bytes]:
    command = [tagtrain_exe(), "agent", "--server", url, "--machine-key", key]
    command += ["--state", str(state), "--listen", "127.0.0.1:0", "--poll", "0.2"]
    return subprocess.Popen(
        command, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=clean_env()
    )


def test_kill_9_mid_sync_loses_and_doubles_nothing(tmp_path: Path) -> None:
    """Captures pile up while the server is away; it comes back, and the agent is killed with -9
    in the middle of sending them. After a restart all of them are on the server, once each."""
    data, state, log = tmp_path / "server", tmp_path / "agent", tmp_path / "agent.log"
    token, port = admin_token(data), free_port()
    camera = {
        "name": "cam",
        "source": str(distinct_frames(tmp_path / "frames")),
        "max_fps": 25,
        "capture": {"frequency_hz": 25, "max_per_minute": 6000},
    }
    with live_server(data, port) as url:
        machine_id, key = register_machine(url, token)
        with api(url, token) as client:
            client.put(
                f"/api/v1/machines/{machine_id}/config", json={"cameras": [camera]}
            ).raise_for_status()
        agent = start_agent(url, key, state, log)
        eventually(lambda: len(captured(url, token)) >= 10, 60)
    # The server is away: captures wait in the queue.
    eventually(lambda: len(queued_ids(state / "captures")) >= 80, 60)
    with live_server(data, port) as url:
        stored = len(captured(url, token))
        try:  # kill it while it is sending what piled up
            eventually(lambda: len(captured(url, token)) >= stored + 3, 60)
        finally:
            agent.send_signal(signal.SIGKILL)
            agent.wait(timeout=30)
        assert agent.returncode == -signal.SIGKILL
        waiting = queued_ids(state / "captures")  # durable when it died: each must arrive
        assert len(waiting) >= 20, "the queue had drained before the kill"

        again = start_agent(url, key, state, log)
        try:  # up (its second start in the log), no longer capturing, then its queue drained
            eventually(lambda: log.read_text().count("local services on") == 2, 60)
            camera["capture"] = {"frequency_hz": 0}
            with api(url, token) as client:
                client.put(
                    f"/api/v1/machines/{machine_id}/config", json={"cameras": [camera]}
                ).raise_for_status()
            eventually(lambda: not queued_ids(state / "captures"), 60)
        finally:
            again.send_signal(signal.SIGTERM)
            again.wait(timeout=30)
        items = captured(url, token)

    names = Counter(i["original_name"] for i in items)
    assert [name for name, n in names.items() if n > 1] == [], "a capture was stored twice"
    arrived = {name.removeprefix("cam-").removesuffix(".jpg") for name in names}
    assert waiting <= arrived, f"lost after kill -9: {sorted(waiting - arrived)}"
    assert again.returncode == 0, log.read_text()[-2000:]
