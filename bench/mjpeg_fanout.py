#!/usr/bin/env python3
"""MJPEG fan-out benchmark: S streams x V viewers through a real hub process.

A publisher sends JPEG frames at FPS over MQTT (straight onto the frame topics, as an agent
would); the hub relays them to V raw-socket MJPEG viewers per stream. Prints frames delivered
per viewer, capture -> viewer latency (p50/p99), hub CPU and RSS, and the same figures for a
bare asyncio relay that forwards identical bytes (the yardstick of DESIGN §7).

    python bench/mjpeg_fanout.py --streams 1 --viewers 50 --fps 10 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import cv2
import numpy as np
import psutil
import yaml

from glimpser.shared.codec import COM, encode_frame
from glimpser.shared.models import FrameMeta, StreamState, StreamStatus


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_jpeg(width: int, height: int, quality: int = 80) -> bytes:
    rng = np.random.default_rng(1)
    img = cv2.GaussianBlur(rng.integers(0, 255, (height, width, 3), np.uint8), (0, 0), 3)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


@dataclass
class Viewer:
    frames: int = 0
    latencies: list[float] = field(default_factory=list)
    error: str | None = None


def captured_at(jpeg: bytes) -> float | None:
    # The metadata COM segment sits right after SOI (see shared/codec.py).
    if len(jpeg) > 6 and jpeg[3] == COM:
        length = int.from_bytes(jpeg[4:6], "big")
        raw = jpeg[6 : 4 + length]
        if raw.startswith(b"glimpser:"):
            return float(json.loads(raw[9:])["captured_at"])
    return None


async def view(host: str, port: int, path: str, viewer: Viewer, stop: asyncio.Event) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
        # HTTP/1.0 so the hub streams raw parts rather than chunked transfer encoding.
        writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        await reader.readuntil(b"\r\n\r\n")  # response headers
        while not stop.is_set():
            headers = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in headers.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            body = await reader.readexactly(length)
            at = captured_at(body)
            if at is not None:
                viewer.latencies.append(time.time() - at)
            viewer.frames += 1
        writer.close()
    except (OSError, asyncio.IncompleteReadError, StopIteration) as err:
        if not stop.is_set():
            viewer.error = repr(err)


async def publish(
    host: str, port: int, streams: list[str], jpeg: bytes, fps: float, stop: asyncio.Event
) -> int:
    sent = 0
    async with aiomqtt.Client(host, port, identifier="bench-agent") as client:
        for sid in streams:
            state = StreamState(
                stream_id=sid, agent_id="bench", template_id=sid, name=sid, source="test",
                status=StreamStatus.ACTIVE, configured_fps=fps, width=0, height=0,
            )  # fmt: skip
            await client.publish(f"glimpser/bench/{sid}/state", state.model_dump_json(), 1, True)
        period = 1 / fps
        next_at = time.monotonic()
        seq = 0
        while not stop.is_set():
            for sid in streams:
                frame = encode_frame(jpeg, FrameMeta(seq=seq, captured_at=time.time()))
                await client.publish(f"glimpser/bench/{sid}/frame", frame, qos=0)
                sent += 1
            seq += 1
            next_at += period
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    return sent


async def bare_relay(port: int, streams: list[str], jpeg: bytes, fps: float,
                     stop: asyncio.Event) -> None:
    """The yardstick: an asyncio server writing the same multipart bytes, latest-wins."""
    clients: dict[str, set[asyncio.StreamWriter]] = {s: set() for s in streams}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = (await reader.readuntil(b"\r\n\r\n")).split(b" ")[1].decode()
        sid = line.split("/")[3]
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace;"
                     b"boundary=frame\r\n\r\n")
        clients[sid].add(writer)

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    period, seq = 1 / fps, 0
    next_at = time.monotonic()
    async with server:
        while not stop.is_set():
            for sid in streams:
                frame = encode_frame(jpeg, FrameMeta(seq=seq, captured_at=time.time()))
                part = (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                        + str(len(frame)).encode() + b"\r\n\r\n" + frame + b"\r\n")
                for w in list(clients[sid]):
                    if w.transport.get_write_buffer_size() < 4 * len(part):  # skip slow ones
                        w.write(part)
            seq += 1
            next_at += period
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))


def report(name: str, viewers: list[Viewer], seconds: float, fps: float,
           cpu: float, rss: int) -> dict[str, float]:
    per = [v.frames / seconds for v in viewers]
    lat = sorted(x for v in viewers for x in v.latencies)
    p50 = lat[len(lat) // 2] * 1000 if lat else float("nan")
    p99 = lat[int(len(lat) * 0.99)] * 1000 if lat else float("nan")
    ok = sum(1 for f in per if f >= 0.95 * fps)
    delivered = sum(v.frames for v in viewers)
    errors = sum(1 for v in viewers if v.error)
    cpu_ms = (cpu * seconds * 10) / delivered if delivered else float("nan")
    print(f"{name:>10}: {statistics.mean(per):5.2f} fps/viewer (min {min(per):.2f}), "
          f"{ok}/{len(viewers)} viewers >= 95 % of {fps:g} fps, latency p50 {p50:.1f} ms "
          f"p99 {p99:.1f} ms, CPU {cpu:.1f} % ({cpu_ms:.3f} ms per delivered frame), "
          f"RSS {rss / 2**20:.0f} MiB, errors {errors}"
          + (f" (first: {next(v.error for v in viewers if v.error)})" if errors else ""))
    return {"fps": statistics.mean(per), "cpu": cpu}


async def measure(proc: psutil.Process, seconds: float, warmup: float,
                  viewers: list[Viewer]) -> tuple[float, int]:
    await asyncio.sleep(warmup)
    for v in viewers:
        v.frames, v.latencies = 0, []
    t0 = proc.cpu_times()
    await asyncio.sleep(seconds)
    t1 = proc.cpu_times()
    cpu = (t1.user + t1.system - t0.user - t0.system) / seconds * 100
    return cpu, proc.memory_info().rss


async def run_hub_case(args: argparse.Namespace, jpeg: bytes) -> None:
    http_port, mqtt_port = free_port(), free_port()
    streams = [f"s{i}" for i in range(args.streams)]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "hub.yaml"
        cfg.write_text(yaml.safe_dump({
            "http": {"host": "127.0.0.1", "port": http_port},
            "broker": {"host": "127.0.0.1", "port": mqtt_port},
            "embedded_broker": args.broker == "embedded", "data_dir": tmp,
            "log_level": "WARNING",
        }))
        broker = None
        if args.broker == "mosquitto":
            conf = Path(tmp) / "m.conf"
            conf.write_text(f"listener {mqtt_port} 127.0.0.1\nallow_anonymous true\n")
            broker = await asyncio.create_subprocess_exec("mosquitto", "-c", str(conf))
            await asyncio.sleep(0.5)
        hub = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "glimpser.hub", "--config", str(cfg))
        stop = asyncio.Event()
        try:
            await asyncio.sleep(3)
            pub = asyncio.create_task(
                publish("127.0.0.1", mqtt_port, streams, jpeg, args.fps, stop)
            )
            await asyncio.sleep(1)
            viewers = [Viewer() for _ in streams for _ in range(args.viewers)]
            tasks = [asyncio.create_task(view("127.0.0.1", http_port,
                                              f"/api/stream/{sid}/mjpeg", viewers[i], stop))
                     for i, sid in enumerate(s for s in streams for _ in range(args.viewers))]
            cpu, rss = await measure(psutil.Process(hub.pid), args.seconds, 3, viewers)
            stop.set()
            report("glimpser", viewers, args.seconds, args.fps, cpu, rss)
            for t in tasks:
                t.cancel()
            await asyncio.gather(pub, *tasks, return_exceptions=True)
        finally:
            hub.send_signal(signal.SIGTERM)
            await hub.wait()
            if broker:
                broker.terminate()
                await broker.wait()


async def run_bare_case(args: argparse.Namespace, jpeg: bytes) -> None:
    port = free_port()
    streams = [f"s{i}" for i in range(args.streams)]
    stop = asyncio.Event()
    relay = asyncio.create_task(bare_relay(port, streams, jpeg, args.fps, stop))
    await asyncio.sleep(0.5)
    viewers = [Viewer() for _ in streams for _ in range(args.viewers)]
    tasks = [asyncio.create_task(view("127.0.0.1", port, f"/api/stream/{sid}/mjpeg",
                                      viewers[i], stop))
             for i, sid in enumerate(s for s in streams for _ in range(args.viewers))]
    # The bare relay runs in this process, so its CPU includes the viewers': an upper bound.
    cpu, rss = await measure(psutil.Process(), args.seconds, 2, viewers)
    stop.set()
    report("bare relay", viewers, args.seconds, args.fps, cpu, rss)
    for t in tasks:
        t.cancel()
    await asyncio.gather(relay, *tasks, return_exceptions=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--streams", type=int, default=1)
    p.add_argument("--viewers", type=int, default=50, help="viewers per stream")
    p.add_argument("--fps", type=float, default=10)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--broker", choices=["embedded", "mosquitto"], default="embedded")
    p.add_argument("--no-baseline", action="store_true")
    args = p.parse_args()
    jpeg = make_jpeg(args.width, args.height)
    print(f"{args.streams} stream(s) x {args.viewers} viewers, {args.width}x{args.height} "
          f"{len(jpeg) / 1024:.0f} KiB JPEG at {args.fps:g} fps, {args.seconds:g} s, "
          f"broker {args.broker}")
    asyncio.run(run_hub_case(args, jpeg))
    if not args.no_baseline:
        asyncio.run(run_bare_case(args, jpeg))


if __name__ == "__main__":
    main()
