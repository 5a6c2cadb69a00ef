"""Headless Debian chromium for tests of pages polygen writes.

* ``chromium()``: the binary (installed by ``scripts/system-deps.sh`` as root; otherwise the
  test skips, saying so).
* ``dump_dom(url, profile)`` / ``screenshot(url, png, profile)``: one-shot runs of the command line
  modes, after the page's scripts ran.
* ``Browser``: a small DevTools-protocol client over ``--remote-debugging-pipe`` (no port, no extra
  packages) for real mouse clicks and key presses: ``Browser(profile).open(url)`` then
  ``evaluate``, ``click``, ``press``; console errors and CSP violations are collected in ``problems``.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from pathlib import Path

from tests.daemons import require_binary

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--hide-scrollbars", "--window-size=1280,900",
)
TIMEOUT = 120  # seconds; generous for a loaded 2-core machine, never reached when things work


def chromium() -> str:
    return require_binary("chromium")


def _run(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"chromium exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


def dump_dom(url: str, profile: Path, budget_ms: int = 3000) -> str:
    """The DOM as serialised after load and ``budget_ms`` of virtual time (scripts have run)."""
    return _run([f"--virtual-time-budget={budget_ms}", "--dump-dom", url], profile).stdout


def screenshot(url: str, png: Path, profile: Path) -> Path:
    _run([f"--screenshot={png}", url], profile)
    return png


class CDPError(RuntimeError):
    pass


class Browser:
    """One headless chromium driven over the DevTools pipe (fd 3: our commands, fd 4: its replies,
    each message JSON ended by NUL). Use as a context manager."""

    def __init__(self, profile: Path):
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()
        # sh maps our pipe ends onto the descriptors 3 and 4 the protocol uses
        self.proc = subprocess.Popen(
            ["sh", "-c", 'exec "$@" 3<&0 4>&1 </dev/null >/dev/null', "sh",
             chromium(), *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            stdin=cmd_r, stdout=res_w, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        os.close(cmd_r)
        os.close(res_w)
        self._buf = b""
        self._next_id = 0
        self.session: str | None = None
        self.problems: list[str] = []  # console errors, exceptions, CSP violations

    # ------------------------------------------------------------ protocol
    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium did not answer")
            ready, _, _ = select.select([self._res_r], [], [], left)
            if ready:
                chunk = os.read(self._res_r, 1 << 20)
                if not chunk:
                    raise CDPError(f"chromium closed the pipe (exit {self.proc.poll()})")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def _note(self, event: dict) -> None:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            self.problems.append("exception: " + json.dumps(params.get("exceptionDetails", {}))[:500])
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
            self.problems.append(f"console.{params['type']}: {json.dumps(params.get('args'))[:500]}")
        elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
            self.problems.append(f"{params['entry']['source']}: {params['entry']['text']}")

    def send(self, method: str, params: dict | None = None, *, session: bool = True) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise CDPError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._note(reply)

    # ------------------------------------------------------------ page
    def open(self, url: str) -> Browser:
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.send(f"{domain}.enable")
        self.send("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete'")
        return self

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise CDPError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not self.evaluate(f"!!({expression})"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout}s: {expression}")
            time.sleep(0.05)

    def click(self, selector: str) -> None:
        """A real left click (pressed and released) in the middle of the element."""
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.scrollIntoView({{block: 'center'}});"
            " const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        x, y = box
        self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    KEYS = {"Tab": (9, ""), "Enter": (13, "\r"), " ": (32, " ")}

    def press(self, key: str) -> None:
        code, text = self.KEYS[key]
        down = {"type": "keyDown", "key": key, "code": "Space" if key == " " else key,
                "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code}
        if text:
            down["text"] = text
        self.send("Input.dispatchKeyEvent", down)
        self.send("Input.dispatchKeyEvent", {**down, "type": "keyUp", "text": ""})

    # ------------------------------------------------------------ lifetime
    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("Browser.close", session=False)
            except (CDPError, TimeoutError, OSError):
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(timeout=30)
        for fd in (self._cmd_w, self._res_r):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
