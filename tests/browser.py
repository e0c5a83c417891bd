"""Headless Chromium (Debian's package ``chromium``) for console tests: open a noVNC URL
as a user would, wait for noVNC to say how it went, take a screenshot, and judge what
the screenshot shows.

Chromium is driven over its DevTools protocol (a websocket; ``websockets`` is already
a dependency), so the test waits for the page's own status line in real time
instead of guessing a time budget.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageChops
from websockets.asyncio.client import ClientConnection, connect

CHROMIUM = "chromium"
# noVNC's vnc_lite.html: a status bar on top, the remote screen's canvas centred below
# it on this background.
BACKGROUND = (40, 40, 40)
TOP_BAR = 40
STATUS = "document.getElementById('status').textContent"


def missing() -> str | None:
    if shutil.which(CHROMIUM) is None:
        return "chromium is not installed (apt-get install -y chromium)"
    return None


@dataclass(frozen=True)
class Visit:
    status: str  # noVNC's status line when the visit ended
    screenshot: Path


class _Page:
    """One DevTools session on a page: commands in, results out."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        mid = next(self.ids)
        await self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            reply = json.loads(await asyncio.wait_for(self.ws.recv(), 30))
            if reply.get("id") == mid:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression,
                                 returnByValue=True)
        return result.get("result", {}).get("value")


# noVNC's status line while it is still on its way.
PENDING = ("", "Loading", "Connecting")


def visit(url: str, workdir: Path, timeout: float = 60, settle: float = 2.0,
          name: str = "screen.png") -> Visit:
    """Open ``url`` in a 1024x768 window, wait until noVNC's status says how the
    connection went, let the screen draw for ``settle`` seconds, take a screenshot."""
    return asyncio.run(_visit(url, workdir, timeout, settle, workdir / name))


async def _visit(url: str, workdir: Path, timeout: float, settle: float, out: Path
                 ) -> Visit:
    profile = workdir / "chromium-profile"
    process = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--no-first-run",
         "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1024,768",
         "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        page_ws = await _page_socket(profile, process)
        async with connect(page_ws, max_size=None) as ws:
            page = _Page(ws)
            await page.send("Page.enable")
            await page.send("Page.navigate", url=url)
            status = ""
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                status = str(await page.evaluate(
                    f"document.getElementById('status') ? {STATUS} : ''") or "")
                if status.strip() not in PENDING:
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(settle)
            status = str(await page.evaluate(STATUS) or status)
            shot = await page.send("Page.captureScreenshot", format="png")
            out.write_bytes(base64.b64decode(shot["data"]))
            return Visit(status, out)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


async def _page_socket(profile: Path, process: subprocess.Popen[bytes]) -> str:
    """The DevTools websocket of chromium's first page (its port is in DevToolsActivePort)."""
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise AssertionError(f"chromium exited ({process.returncode})")
        with contextlib.suppress(OSError, ValueError, httpx.HTTPError):
            port = int(port_file.read_text().split()[0])
            async with httpx.AsyncClient() as client:
                targets = (await client.get(f"http://127.0.0.1:{port}/json/list")).json()
            for target in targets:
                if target.get("type") == "page":
                    return str(target["webSocketDebuggerUrl"])
        if time.monotonic() > deadline:
            raise AssertionError("chromium's DevTools did not answer within 30 s")
        await asyncio.sleep(0.1)


@dataclass(frozen=True)
class Canvas:
    """What the screenshot shows below noVNC's status bar."""

    width: int  # the box around everything that is not the page's background
    height: int
    colours: int  # distinct colours inside it


def remote_screen(png: Path) -> Canvas:
    with Image.open(png) as image:
        rgb = image.convert("RGB")
    body = rgb.crop((0, TOP_BAR, rgb.width, rgb.height))
    differs = ImageChops.difference(body, Image.new("RGB", body.size, BACKGROUND))
    box = differs.convert("L").point(lambda v: 255 if v else 0).getbbox()
    if box is None:
        return Canvas(0, 0, 0)
    colours = body.crop(box).getcolors(maxcolors=1 << 20) or []
    return Canvas(box[2] - box[0], box[3] - box[1], len(colours))

