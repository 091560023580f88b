#!/usr/bin/env python3
"""Whole-path benchmark: camera -> agent -> broker -> hub -> 50 MJPEG viewers, side by side
with Debian `motion` and a bare relay on the same camera (the yardstick of DESIGN §7).

An MJPEG "camera" in this process serves a pre-encoded 640x480 (~60 KB) JPEG sequence at
10 fps: a moving block (so motion detection has something to see) and a binary frame index in
a row of black/white squares along the top, which survives re-encoding, so a few "probe"
viewers can decode it and measure camera -> viewer latency for every case. Glimpser's JPEGs
also carry `captured_at` in their COM segment (agent capture -> viewer latency).

Cases, each with V raw-socket viewers (HTTP/1.0, raw multipart parts) for a fixed window
after a warm-up; CPU is psutil cpu_times deltas of the processes under test (this process,
which hosts the camera and the viewers, is reported apart and never counted):

- glimpser-embedded: `python -m glimpser.hub` (embedded amqtt broker) + `python -m glimpser.agent`
  with one `{kind: http}` template, fps 10, `motion: {}`, keepalive 5.
- glimpser-mosquitto: the same with a separate `mosquitto` broker.
- motion: Debian `motion -n -c <conf>` with netcam_url = the camera, stream on a local port.
- relay: a bare asyncio relay (a child of this script) that reads the camera's parts and
  forwards the bytes untouched, latest-wins: the floor for any MJPEG fan-out.

    python bench/whole_path.py                      # all four cases, 50 viewers, 20 s each
    python bench/whole_path.py --cases glimpser-mosquitto,motion --viewers 50 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import psutil
import yaml
from aiohttp import web

COM = 0xFE
CODE_BITS = 8  # frame index squares along the top: 8 x 80 px wide, 40 px high
SQUARE_W, SQUARE_H = 80, 40
ALL_CASES = ("glimpser-embedded", "glimpser-mosquitto", "motion", "relay")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


# ---------------------------------------------------------------------------------------------
# The camera


def make_frames(count: int, width: int, height: int, quality: int) -> list[bytes]:
    """Pre-encode `count` frames: textured background, a moving block, the index code."""
    rng = np.random.default_rng(1)
    background = cv2.GaussianBlur(rng.integers(0, 255, (height, width, 3), np.uint8), (0, 0), 1.5)
    frames = []
    for i in range(count):
        img = background.copy()
        for bit in range(CODE_BITS):
            on = (i >> bit) & 1
            img[0:SQUARE_H, bit * SQUARE_W : (bit + 1) * SQUARE_W] = 255 if on else 0
        x = int((width - 100) * (i % 50) / 49)  # crosses the frame every 5 s
        img[height // 2 - 50 : height // 2 + 50, x : x + 100] = (0, 0, 230)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        frames.append(buf.tobytes())
    return frames


def frame_index(jpeg: bytes) -> int | None:
    """Read the index code back (1/8-scale grey decode: ~0.3 ms)."""
    grey = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8)
    if grey is None:
        return None
    step, rows = SQUARE_W // 8, SQUARE_H // 8
    index = 0
    for bit in range(CODE_BITS):
        cell = grey[1 : rows - 1, bit * step + 2 : (bit + 1) * step - 2]
        if float(cell.mean()) > 128:
            index |= 1 << bit
    return index


class RawStream(web.StreamResponse):
    # Like a real IP camera: raw multipart parts, no chunked transfer encoding, the end of the
    # body is the connection closing (aiohttp would otherwise chunk for HTTP/1.1 clients).
    _length_check = False


class Camera:
    """An MJPEG camera at `fps`; all clients get the same part at the same tick."""

    def __init__(self, frames: list[bytes], fps: float) -> None:
        self.parts = [
            b"--camframe\r\nContent-Type: image/jpeg\r\nContent-Length: "
            + str(len(f)).encode() + b"\r\n\r\n" + f + b"\r\n"
            for f in frames
        ]  # fmt: skip
        self.frames = frames
        self.fps = fps
        self.index = 0
        self.sent_at = [0.0] * len(frames)  # wall time each index was last sent
        self.tick = asyncio.Condition()
        self.connections = 0
        self.handlers: set[asyncio.Task[object]] = set()

    async def run(self) -> None:
        period = 1 / self.fps
        next_at = time.monotonic()
        while True:
            next_at += period
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            async with self.tick:
                self.index = (self.index + 1) % len(self.parts)
                self.sent_at[self.index] = time.time()
                self.tick.notify_all()

    async def mjpeg(self, request: web.Request) -> web.StreamResponse:
        resp = RawStream(
            headers={
                "Content-Type": "multipart/x-mixed-replace; boundary=camframe",
                "Cache-Control": "no-cache",
                "Connection": "close",
            }
        )
        await resp.prepare(request)
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            while True:
                async with self.tick:
                    await self.tick.wait()
                    index = self.index
                await resp.write(self.parts[index])
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.handlers.discard(task)
        return resp

    async def snapshot(self, request: web.Request) -> web.Response:
        return web.Response(body=self.frames[self.index], content_type="image/jpeg")


async def start_camera(camera: Camera, port: int) -> web.AppRunner:
    app = web.Application()
    app.router.add_get("/video.mjpg", camera.mjpeg)
    app.router.add_get("/snapshot.jpg", camera.snapshot)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


# ---------------------------------------------------------------------------------------------
# Viewers


@dataclass
class Viewer:
    probe: bool = False
    frames: int = 0
    bytes: int = 0
    com_latencies: list[float] = field(default_factory=list)  # agent capture -> viewer
    cam_latencies: list[float] = field(default_factory=list)  # camera send -> viewer (probes)
    arrivals: list[float] = field(default_factory=list)
    error: str | None = None

    def reset(self) -> None:
        self.frames, self.bytes = 0, 0
        self.com_latencies, self.cam_latencies, self.arrivals = [], [], []


def captured_at(jpeg: bytes) -> float | None:
    # Glimpser's metadata COM segment sits right after SOI (see shared/codec.py).
    if len(jpeg) > 6 and jpeg[3] == COM:
        length = int.from_bytes(jpeg[4:6], "big")
        raw = jpeg[6 : 4 + length]
        if raw.startswith(b"glimpser:"):
            return float(json.loads(raw[9:])["captured_at"])
    return None


async def read_part(reader: asyncio.StreamReader) -> bytes:
    """One JPEG from a multipart stream: by Content-Length, else by scanning SOI..EOI."""
    while True:
        headers = await reader.readuntil(b"\r\n\r\n")
        length = None
        for line in headers.split(b"\r\n"):
            if line.lower().startswith(b"content-length"):
                length = int(line.split(b":", 1)[1])
        if length is not None:
            return await reader.readexactly(length)
        if b"image/jpeg" in headers.lower():
            await reader.readuntil(b"\xff\xd8")
            return b"\xff\xd8" + await reader.readuntil(b"\xff\xd9")
        # a bare CRLF pair between parts: read on


async def view(port: int, path: str, viewer: Viewer, camera: Camera, stop: asyncio.Event) -> None:
    writer = None
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
        # HTTP/1.0 so servers stream raw parts rather than chunked transfer encoding.
        writer.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        status = await reader.readuntil(b"\r\n\r\n")
        first_line = status.split(b"\r\n", 1)[0]
        if b" 200 " not in first_line:
            raise OSError(f"HTTP {first_line.decode(errors='replace')}")
        while not stop.is_set():
            body = await read_part(reader)
            now = time.time()
            viewer.frames += 1
            viewer.bytes += len(body)
            viewer.arrivals.append(now)
            at = captured_at(body)
            if at is not None:
                viewer.com_latencies.append(now - at)
            if viewer.probe:
                index = frame_index(body)
                if index is not None and index < len(camera.sent_at) and camera.sent_at[index]:
                    viewer.cam_latencies.append(now - camera.sent_at[index])
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as err:
        if not stop.is_set():
            viewer.error = repr(err)
    finally:
        if writer is not None:
            writer.close()


# ---------------------------------------------------------------------------------------------
# Bare relay (runs as a child process of this script: `--relay-child CAMERA_PORT PORT`)


async def relay_main(camera_port: int, port: int) -> None:
    clients: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace;"
                     b"boundary=frame\r\n\r\n")  # fmt: skip
        clients.add(writer)

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", camera_port, limit=2**20)
        writer.write(b"GET /video.mjpg HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        while True:
            jpeg = await read_part(reader)
            part = (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                    + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")  # fmt: skip
            for w in list(clients):
                if w.is_closing():
                    clients.discard(w)
                elif w.transport.get_write_buffer_size() < 4 * len(part):  # skip slow ones
                    w.write(part)


# ---------------------------------------------------------------------------------------------
# Processes


class Procs:
    """Every subprocess this benchmark starts, by PID; all of them are ended at the end."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (self.logdir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        self.started.append((name, proc))
        return proc

    def check(self) -> None:
        for name, proc in self.started:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 15) -> str:
        path = self.logdir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop_all(self) -> None:
        for _, proc in reversed(self.started):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for name, proc in reversed(self.started):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"  {name} (pid {proc.pid}) ignored SIGTERM: killing it", file=sys.stderr)
                proc.kill()
                proc.wait()
        self.started.clear()


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float, what: str,
                   procs: Procs) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check()
        with contextlib.suppress(OSError, ValueError):
            if await check():
                return
        await asyncio.sleep(0.25)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")


def port_open(port: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
        return True

    return check


def first_frame(port: int, path: str) -> Callable[[], Awaitable[bool]]:
    """The server answers 200 and sends a whole JPEG part."""

    async def check() -> bool:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
        try:
            writer.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
            status = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
            if b" 200 " not in status.split(b"\r\n", 1)[0]:
                return False
            body = await asyncio.wait_for(read_part(reader), 2)
            return body.startswith(b"\xff\xd8")
        except (TimeoutError, asyncio.IncompleteReadError):
            return False
        finally:
            writer.close()

    return check


def stream_active(http_port: int, stream: str) -> Callable[[], Awaitable[bool]]:
    def get() -> bool:
        url = f"http://127.0.0.1:{http_port}/api/streams/{stream}"
        with urllib.request.urlopen(url, timeout=2) as resp:
            info = json.load(resp)
        return bool(info.get("status") == "active" and info.get("frames", 0) > 0)

    async def check() -> bool:
        return await asyncio.to_thread(get)

    return check


def cpu_seconds(proc: psutil.Process) -> float:
    try:
        t = proc.cpu_times()
        return t.user + t.system + t.children_user + t.children_system
    except psutil.NoSuchProcess:
        return float("nan")


# ---------------------------------------------------------------------------------------------
# Cases


@dataclass
class Result:
    case: str
    viewers: int
    seconds: float
    fps: float
    per_viewer: list[float]
    delivered: int
    mean_bytes: float
    com_p50: float
    com_p99: float
    cam_p50: float
    cam_p99: float
    gap_p99: float
    cpu: dict[str, float]  # process -> % of one core
    rss: dict[str, int]
    bench_cpu: float
    errors: list[str]
    camera_connections: int

    @property
    def cpu_total(self) -> float:
        return sum(self.cpu.values())

    @property
    def cpu_ms_per_frame(self) -> float:
        cpu_s = self.cpu_total / 100 * self.seconds
        return cpu_s * 1000 / self.delivered if self.delivered else float("nan")

    def ok_viewers(self) -> int:
        return sum(1 for f in self.per_viewer if f >= 0.95 * self.fps)

    def as_dict(self) -> dict[str, object]:
        return {
            "case": self.case, "viewers": self.viewers, "seconds": self.seconds,
            "fps_mean": statistics.mean(self.per_viewer), "fps_min": min(self.per_viewer),
            "viewers_ok": self.ok_viewers(), "delivered": self.delivered,
            "mean_bytes": self.mean_bytes, "com_p50_ms": self.com_p50,
            "com_p99_ms": self.com_p99, "cam_p50_ms": self.cam_p50, "cam_p99_ms": self.cam_p99,
            "gap_p99_ms": self.gap_p99, "cpu_pct": self.cpu, "cpu_total_pct": self.cpu_total,
            "cpu_ms_per_frame": self.cpu_ms_per_frame,
            "rss_mib": {k: v / 2**20 for k, v in self.rss.items()},
            "bench_process_cpu_pct": self.bench_cpu, "errors": self.errors[:3],
            "camera_connections": self.camera_connections,
        }  # fmt: skip


async def measure(case: str, args: argparse.Namespace, camera: Camera, port: int, path: str,
                  procs: dict[str, psutil.Process]) -> Result:  # fmt: skip
    """V viewers on port/path; warm-up, then the measured window."""
    stop = asyncio.Event()
    viewers = [Viewer(probe=i < args.probes) for i in range(args.viewers)]
    tasks = [asyncio.create_task(view(port, path, v, camera, stop)) for v in viewers]
    me = psutil.Process()
    await asyncio.sleep(args.warmup)
    for v in viewers:
        v.reset()
    t0 = {name: cpu_seconds(p) for name, p in procs.items()}
    b0 = cpu_seconds(me)
    start = time.monotonic()
    await asyncio.sleep(args.seconds)
    elapsed = time.monotonic() - start
    t1 = {name: cpu_seconds(p) for name, p in procs.items()}
    b1 = cpu_seconds(me)
    rss = {}
    for name, p in procs.items():
        with contextlib.suppress(psutil.NoSuchProcess):
            rss[name] = p.memory_info().rss
    snapshot = [(v.frames, v.bytes, list(v.com_latencies), list(v.cam_latencies),
                 list(v.arrivals), v.error) for v in viewers]  # fmt: skip
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    frames = [s[0] for s in snapshot]
    delivered = sum(frames)
    gaps = [b - a for s in snapshot for a, b in zip(s[4], s[4][1:], strict=False)]
    com = [x for s in snapshot for x in s[2]]
    cam = [x for s in snapshot for x in s[3]]
    return Result(
        case=case, viewers=args.viewers, seconds=elapsed, fps=args.fps,
        per_viewer=[f / elapsed for f in frames], delivered=delivered,
        mean_bytes=sum(s[1] for s in snapshot) / delivered if delivered else 0.0,
        com_p50=pct(com, 0.5) * 1000, com_p99=pct(com, 0.99) * 1000,
        cam_p50=pct(cam, 0.5) * 1000, cam_p99=pct(cam, 0.99) * 1000,
        gap_p99=pct(gaps, 0.99) * 1000,
        cpu={n: (t1[n] - t0[n]) / elapsed * 100 for n in procs},
        rss=rss, bench_cpu=(b1 - b0) / elapsed * 100,
        errors=[s[5] for s in snapshot if s[5]], camera_connections=camera.connections,
    )  # fmt: skip


async def run_glimpser(args: argparse.Namespace, camera: Camera, camera_port: int,
                       broker: str, tmp: Path, procs: Procs) -> Result:  # fmt: skip
    http_port, mqtt_port = free_port(), free_port()
    hub_cfg, agent_cfg = tmp / "hub.yaml", tmp / "agent.yaml"
    (tmp / "hub-data").mkdir()
    (tmp / "agent-data").mkdir()
    hub_cfg.write_text(yaml.safe_dump({
        "http": {"host": "127.0.0.1", "port": http_port},
        "broker": {"host": "127.0.0.1", "port": mqtt_port},
        "embedded_broker": broker == "embedded", "data_dir": str(tmp / "hub-data"),
        "log_level": "WARNING",
    }))  # fmt: skip
    agent_cfg.write_text(yaml.safe_dump({
        "agent_id": "bench", "data_dir": str(tmp / "agent-data"),
        "broker": {"host": "127.0.0.1", "port": mqtt_port}, "log_level": "WARNING",
        "templates": [{
            "id": "cam", "name": "Camera", "fps": args.fps, "keepalive": 5, "motion": {},
            "source": {"kind": "http", "url": f"http://127.0.0.1:{camera_port}/video.mjpg"},
        }],
    }))  # fmt: skip
    watched: dict[str, psutil.Process] = {}
    if broker == "mosquitto":
        conf = tmp / "mosquitto.conf"
        conf.write_text(f"listener {mqtt_port} 127.0.0.1\nallow_anonymous true\n"
                        "persistence false\nlog_dest stderr\n")  # fmt: skip
        p = procs.start("mosquitto", [args.mosquitto, "-c", str(conf)])
        watched["broker"] = psutil.Process(p.pid)
        await wait_for(port_open(mqtt_port), 10, "mosquitto", procs)
    hub = procs.start("hub", [sys.executable, "-m", "glimpser.hub", "--config", str(hub_cfg)])
    await wait_for(port_open(http_port), 30, "the hub's HTTP port", procs)
    agent = procs.start(
        "agent", [sys.executable, "-m", "glimpser.agent", "--config", str(agent_cfg)]
    )
    await wait_for(stream_active(http_port, "cam"), 40, "stream cam to be active", procs)
    watched = {"agent": psutil.Process(agent.pid), **watched, "hub": psutil.Process(hub.pid)}
    result = await measure(f"glimpser-{broker}", args, camera, http_port,
                           "/api/stream/cam/mjpeg", watched)  # fmt: skip
    procs.check()
    return result


async def run_motion(args: argparse.Namespace, camera: Camera, camera_port: int, tmp: Path,
                     procs: Procs) -> Result:  # fmt: skip
    stream_port = free_port()
    conf = tmp / "motion.conf"
    # Motion 4.5 has no stream pass-through (movie_passthrough is for recordings of RTSP
    # cameras only), so the stream is re-encoded at stream_quality, like the agent's JPEGs.
    conf.write_text("\n".join([
        "daemon off", "setup_mode off", f"log_file {tmp / 'motion-own.log'}", "log_level 5",
        f"target_dir {tmp}", f"netcam_url http://127.0.0.1:{camera_port}/video.mjpg",
        "netcam_keepalive off", "width 640", "height 480", f"framerate {args.fps:g}",
        "emulate_motion off", "threshold 1500", "event_gap 60", "picture_output off",
        "movie_output off", "snapshot_interval 0", "webcontrol_port 0",
        f"stream_port {stream_port}", "stream_localhost on", "stream_quality 80",
        f"stream_maxrate {args.fps:g}", "stream_motion off", "stream_grey off",
        "stream_preview_method 0", "",
    ]))  # fmt: skip
    p = procs.start("motion", [args.motion, "-n", "-c", str(conf)])
    await wait_for(first_frame(stream_port, "/"), 30, "a frame from motion's stream", procs)
    return await measure(
        "motion", args, camera, stream_port, "/", {"motion": psutil.Process(p.pid)}
    )


async def run_relay(args: argparse.Namespace, camera: Camera, camera_port: int,
                    procs: Procs) -> Result:  # fmt: skip
    port = free_port()
    p = procs.start(
        "relay", [sys.executable, __file__, "--relay-child", str(camera_port), str(port)]
    )
    await wait_for(first_frame(port, "/"), 15, "a frame from the bare relay", procs)
    return await measure("relay", args, camera, port, "/", {"relay": psutil.Process(p.pid)})


async def run_case(case: str, args: argparse.Namespace, frames: list[bytes]) -> Result | None:
    camera = Camera(frames, args.fps)
    camera_port = free_port()
    ticker = asyncio.create_task(camera.run())
    runner = await start_camera(camera, camera_port)
    with tempfile.TemporaryDirectory(prefix="glimpser-whole-") as tmpdir:
        tmp = Path(tmpdir)
        procs = Procs(tmp)
        try:
            if case.startswith("glimpser-"):
                return await run_glimpser(args, camera, camera_port, case.split("-", 1)[1],
                                          tmp, procs)  # fmt: skip
            if case == "motion":
                return await run_motion(args, camera, camera_port, tmp, procs)
            return await run_relay(args, camera, camera_port, procs)
        except (RuntimeError, TimeoutError, OSError) as err:
            print(f"{case}: FAILED: {err}", file=sys.stderr)
            for name, _ in procs.started:
                print(f"--- {name} log:\n{procs.tail(name)}", file=sys.stderr)
            return None
        finally:
            procs.stop_all()
            ticker.cancel()
            for task in list(camera.handlers):
                task.cancel()
            await asyncio.sleep(0)
            await runner.cleanup()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker


def print_result(r: Result) -> None:
    cpu = ", ".join(f"{k} {v:.1f} %" for k, v in r.cpu.items())
    rss = ", ".join(f"{k} {v / 2**20:.0f} MiB" for k, v in r.rss.items())
    print(f"{r.case}: {statistics.mean(r.per_viewer):.2f} fps/viewer (min "
          f"{min(r.per_viewer):.2f}), {r.ok_viewers()}/{r.viewers} viewers >= 95 % of "
          f"{r.fps:g} fps, {r.mean_bytes / 1024:.1f} KiB/frame\n"
          f"  latency capture->viewer (COM) p50 {r.com_p50:.1f} / p99 {r.com_p99:.1f} ms; "
          f"camera->viewer (probes) p50 {r.cam_p50:.1f} / p99 {r.cam_p99:.1f} ms; "
          f"arrival gap p99 {r.gap_p99:.1f} ms\n"
          f"  CPU {cpu}; total {r.cpu_total:.1f} % = {r.cpu_ms_per_frame:.3f} ms per "
          f"delivered frame ({r.delivered} frames); RSS {rss}; bench process {r.bench_cpu:.1f} %"
          f"; camera connections {r.camera_connections}"
          + (f"\n  {len(r.errors)} viewer errors, first: {r.errors[0]}" if r.errors else ""),
          flush=True)  # fmt: skip


def print_table(results: list[Result]) -> None:
    def ms(x: float) -> str:
        return "n/a" if x != x else f"{x:.0f}"  # NaN check

    print(
        "\n| case | fps/viewer mean (min) | viewers >= 95 % | capture->viewer p50/p99 "
        "| camera->viewer p50/p99 | CPU by process | CPU sum | CPU ms/frame | RSS |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        cpu = ", ".join(f"{k} {v:.1f} %" for k, v in r.cpu.items())
        rss = ", ".join(f"{k} {v / 2**20:.0f}" for k, v in r.rss.items())
        print(f"| {r.case} | {statistics.mean(r.per_viewer):.2f} ({min(r.per_viewer):.2f}) | "
              f"{r.ok_viewers()}/{r.viewers} | {ms(r.com_p50)} / {ms(r.com_p99)} ms | "
              f"{ms(r.cam_p50)} / {ms(r.cam_p99)} ms | {cpu} | {r.cpu_total:.1f} % | "
              f"{r.cpu_ms_per_frame:.3f} | {rss} MiB |")  # fmt: skip


async def main_async(args: argparse.Namespace) -> list[Result]:
    frames = make_frames(100, args.width, args.height, args.quality)
    size = statistics.mean(len(f) for f in frames)
    print(
        f"camera: {len(frames)} pre-encoded {args.width}x{args.height} JPEGs, mean "
        f"{size / 1000:.1f} kB, at {args.fps:g} fps; {args.viewers} viewers ({args.probes} "
        f"probes), warm-up {args.warmup:g} s, window {args.seconds:g} s",
        flush=True,
    )
    results = []
    for case in args.cases:
        if case == "motion" and not shutil.which(args.motion):
            print(f"motion: SKIPPED: {args.motion} not found (apt-get install motion)")
            continue
        if case == "glimpser-mosquitto" and not shutil.which(args.mosquitto):
            print(f"{case}: SKIPPED: {args.mosquitto} not found")
            continue
        result = await run_case(case, args, frames)
        if result is not None:
            print_result(result)
            results.append(result)
    if results:
        print_table(results)
    return results


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--relay-child":
        with contextlib.suppress(KeyboardInterrupt):
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            asyncio.run(relay_main(int(sys.argv[2]), int(sys.argv[3])))
        return 0
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--cases", default=",".join(ALL_CASES),
                   help=f"comma-separated, from {', '.join(ALL_CASES)}")  # fmt: skip
    p.add_argument("--viewers", type=int, default=50)
    p.add_argument("--probes", type=int, default=5, help="viewers that decode the frame index")
    p.add_argument("--fps", type=float, default=10)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--warmup", type=float, default=5)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--quality", type=int, default=85, help="camera JPEG quality (~60 KB)")
    p.add_argument("--motion", default="motion", help="the motion binary")
    p.add_argument("--mosquitto", default="mosquitto", help="the mosquitto binary")
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args()
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(args.cases) - set(ALL_CASES)
    if unknown:
        p.error(f"unknown case(s): {', '.join(sorted(unknown))}")
    results = asyncio.run(main_async(args))
    if args.json:
        Path(args.json).write_text(json.dumps([r.as_dict() for r in results], indent=1))
    return 0 if len(results) == len(args.cases) else 1


if __name__ == "__main__":
    sys.exit(main())
