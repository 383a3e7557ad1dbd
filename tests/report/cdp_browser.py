"""Open a local HTML file in headless Chromium over the DevTools protocol and report what happened.

Dependency-light: Debian's `chromium` and the `websockets` package already in the lock file (Airflow
depends on it). The page's own session records console messages, uncaught exceptions, log entries and
every request it makes, so 'no network requests' and 'no console errors' are observed, not inferred.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageVisit:
    url: str
    console: list[dict[str, Any]] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    log_entries: list[dict[str, Any]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    loaded: bool = False
    evaluated: dict[str, Any] = field(default_factory=dict)
    screenshot: Path | None = None

    @property
    def errors(self) -> list[str]:
        found = [f"console.{m['type']}: {m['text']}" for m in self.console if m["type"] in ("error", "assert")]
        found += [f"exception: {e}" for e in self.exceptions]
        found += [f"log {e.get('source')}: {e.get('text')}" for e in self.log_entries if e.get("level") == "error"]
        return found

    @property
    def other_requests(self) -> list[str]:
        """Requests beyond the page itself (data: URLs are inline, not network)."""
        own = unquote(self.url)
        return [u for u in self.requests if unquote(u) != own and not u.startswith("data:")]


class _Session:
    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None, timeout: float = 30) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.socket.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            reply = json.loads(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.events.append(json.loads(self.socket.recv(timeout=max(0.05, deadline - time.monotonic()))))
            except TimeoutError:
                return

    def wait_for(self, method: str, session: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(e.get("method") == method and e.get("sessionId") == session for e in self.events):
                return True
            try:
                self.events.append(json.loads(self.socket.recv(timeout=max(0.05, deadline - time.monotonic()))))
            except TimeoutError:
                return False
        return False


def _devtools_endpoint(profile: Path, process: subprocess.Popen, timeout: float) -> str:
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with {process.returncode} before opening DevTools")
        if marker.exists():
            lines = marker.read_text().split()
            if len(lines) >= 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        time.sleep(0.05)
    raise TimeoutError("chromium did not open its DevTools port")


def visit(
    html_path: Path,
    *,
    chromium: str,
    screenshot: Path | None = None,
    expression: str = "({})",
    width: int = 1280,
    media: str = "screen",
    clip_top: int = 0,
    max_height: int = 16000,
    timeout: float = 45,
) -> PageVisit:
    """Load html_path in a fresh headless Chromium profile; record console, requests; evaluate; screenshot."""
    from websockets.sync.client import connect

    url = Path(html_path).resolve().as_uri()
    result = PageVisit(url=url)
    with tempfile.TemporaryDirectory(prefix="pv-chromium-") as profile_dir:
        profile = Path(profile_dir)
        command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            endpoint = _devtools_endpoint(profile, process, timeout)
            with connect(endpoint, max_size=None, open_timeout=timeout) as socket:
                cdp = _Session(socket)
                target = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
                session = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
                for domain in ("Page", "Runtime", "Log", "Network"):
                    cdp.send(f"{domain}.enable", session=session)
                cdp.send("Emulation.setDeviceMetricsOverride",
                         {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)  # fmt: skip
                if media != "screen":
                    cdp.send("Emulation.setEmulatedMedia", {"media": media}, session=session)
                cdp.events.clear()
                cdp.send("Page.navigate", {"url": url}, session=session)
                result.loaded = cdp.wait_for("Page.loadEventFired", session, timeout)
                cdp.drain(0.5)  # late console messages or requests after load
                value = cdp.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
                result.evaluated = value.get("result", {}).get("value") or {}
                if screenshot is not None:
                    metrics = cdp.send("Page.getLayoutMetrics", session=session)
                    size = metrics.get("cssContentSize") or metrics["contentSize"]
                    shot = cdp.send(
                        "Page.captureScreenshot",
                        {"format": "png", "captureBeyondViewport": True,
                         "clip": {"x": 0, "y": clip_top, "width": width,
                                  "height": max(1, min(int(size["height"]) - clip_top, max_height)), "scale": 1}},
                        session=session, timeout=timeout,
                    )  # fmt: skip
                    screenshot.parent.mkdir(parents=True, exist_ok=True)
                    screenshot.write_bytes(base64.b64decode(shot["data"]))
                    result.screenshot = screenshot
                cdp.drain(0.2)
                for event in cdp.events:
                    if event.get("sessionId") != session:
                        continue
                    params = event.get("params", {})
                    method = event.get("method")
                    if method == "Runtime.consoleAPICalled":
                        text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                        result.console.append({"type": params.get("type"), "text": text})
                    elif method == "Runtime.exceptionThrown":
                        details = params.get("exceptionDetails", {})
                        result.exceptions.append(str(details.get("exception", {}).get("description") or details.get("text")))
                    elif method == "Log.entryAdded":
                        result.log_entries.append(params.get("entry", {}))
                    elif method == "Network.requestWillBeSent":
                        result.requests.append(params.get("request", {}).get("url", ""))
                with contextlib.suppress(Exception):  # the browser may close the socket before answering
                    cdp.send("Browser.close", timeout=5)
        finally:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
    return result
