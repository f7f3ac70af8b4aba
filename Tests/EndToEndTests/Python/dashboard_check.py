#!/usr/bin/env python3
"""Loads the node's dashboard in a real headless Chromium (through the DevTools protocol), waits
for live data to be shown, checks the page and saves a screenshot.

Usage: dashboard_check.py http://127.0.0.1:PORT/ screenshot.png     exit 0 when the page shows live data."""
import asyncio, base64, json, os, re, shutil, signal, subprocess, sys, tempfile, time, urllib.request

import websockets

URL, SHOT = sys.argv[1], sys.argv[2]


async def main():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("chromium is not installed (scripts/deps test installs it)")
        return 1
    profile = tempfile.mkdtemp(prefix="flowchain-chromium-")
    proc = subprocess.Popen(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--window-size=1280,900", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        devtools = None
        while time.time() < deadline and devtools is None:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                print("chromium exited early")
                return 1
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            if m:
                devtools = m.group(1)
        if devtools is None:
            print("chromium did not open its DevTools port")
            return 1
        port = re.search(r":(\d+)/", devtools).group(1)
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        page = next(t for t in targets if t.get("type") == "page")
        async with websockets.connect(page["webSocketDebuggerUrl"], max_size=64 * 1024 * 1024) as cdp:
            ids = iter(range(1, 10_000))

            async def send(method, params=None):
                i = next(ids)
                await cdp.send(json.dumps({"id": i, "method": method, "params": params or {}}))
                while True:
                    msg = json.loads(await asyncio.wait_for(cdp.recv(), 30))
                    if msg.get("id") == i:
                        if "error" in msg:
                            raise RuntimeError(f"{method}: {msg['error']}")
                        return msg["result"]

            await send("Page.enable")
            await send("Page.navigate", {"url": URL})
            probe = """JSON.stringify({
                readings: +document.body.dataset.readings,
                blocks: document.querySelectorAll('#blocks tr').length,
                tip: document.getElementById('tip').textContent,
                conn: document.getElementById('conn').textContent,
                ringNodes: +(document.body.dataset.ringNodes || 0),
                ringDots: document.querySelectorAll('#ringsvg circle.node').length,
                anchor: document.getElementById('anchor').textContent,
                devices: [...document.querySelectorAll('[data-device]')].map(e => [e.dataset.device, +e.dataset.points])
            })"""
            state = {}
            end = time.time() + 45
            while time.time() < end:
                r = await send("Runtime.evaluate", {"expression": probe, "returnByValue": True})
                state = json.loads(r["result"].get("value") or "{}")
                devices = dict(state.get("devices", []))
                if (state.get("readings", 0) >= 8 and state.get("blocks", 0) >= 2 and all(devices.get(f"demo-{i}", 0) >= 2 for i in range(4))
                        and state.get("ringDots", 0) >= 1 and state.get("anchor", "–") != "–"):
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(1.0)   # let the chart redraw once more before the picture
            shot = await send("Page.captureScreenshot", {"format": "png"})
            with open(SHOT, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
            print("dashboard state:", json.dumps(state))
            devices = dict(state.get("devices", []))
            ok = (state.get("readings", 0) >= 8 and state.get("blocks", 0) >= 2 and state.get("tip", "–") != "–"
                  and all(devices.get(f"demo-{i}", 0) >= 2 for i in range(4)) and state.get("conn") == "live"
                  and state.get("ringDots", 0) == state.get("ringNodes", -1) >= 1 and state.get("anchor", "–") != "–")
            print("dashboard shows live data" if ok else "dashboard did not show live data in time")
            return 0 if ok else 1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


sys.exit(asyncio.run(main()))
