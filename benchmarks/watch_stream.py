"""`vad-pipeline watch` on a long live stream: latency, sustained frames/s and resident memory over time.

A generated video (with an injected event every few hundred frames) is served as an endless MJPEG stream over
HTTP on loopback, as an IP camera serves it, until ``--frames`` frames have gone out; ``watch`` scores it with the
bundle ``--model`` and this script samples the process's resident memory every ``--sample`` snippets. Prints one
JSON document (also written to ``--out``): frames, snippets, alerts, latency p50 / p95, frames/s, and the memory
samples (MB) with their first, middle and last values and the peak.

    python benchmarks/watch_stream.py --model vad-work/models/mil-<key>.pt --frames 20000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from vad_pipeline.commands.watch import WatchConfig, watch
from vad_pipeline.core.workspace import Workspace
from vad_pipeline.synthetic.videos import jpeg_frames, render_video


def rss_mb() -> float:
    """The process's resident memory now (Linux /proc), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def serve_loop(jpegs: list[bytes], total: int, fps: float | None) -> ThreadingHTTPServer:
    """An MJPEG server repeating ``jpegs`` until ``total`` frames have been sent (at ``fps`` when given)."""

    class Stream(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            for index in range(total):
                jpeg = jpegs[index % len(jpegs)]
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                                 + jpeg + b"\r\n")
                if fps:
                    time.sleep(1 / fps)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Stream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a weakly supervised model bundle")
    parser.add_argument("--workdir", type=Path, default=Path("vad-work"), help="the workspace the bundle came from")
    parser.add_argument("--frames", type=int, default=20000, help="frames the stream sends before it ends")
    parser.add_argument("--fps", type=float, default=None, help="stream rate (default: as fast as it is read)")
    parser.add_argument("--sample", type=int, default=50, help="sample memory every N snippets")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/watch_stream.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "loop.mp4"
        render_video(video, seed=7, frames=400, event="vehicle", interval=(200, 260))
        jpegs = jpeg_frames(video)
    server = serve_loop(jpegs, args.frames, args.fps)
    samples: list[tuple[int, float]] = []

    def emit(event: dict) -> None:
        if event["event"] == "score" and event["snippet"] % args.sample == 0:
            samples.append((event["end_frame"] + 1, round(rss_mb(), 1)))

    started = time.perf_counter()
    try:
        summary = watch(Workspace(args.workdir), f"http://127.0.0.1:{server.server_address[1]}/loop.mjpg",
                        WatchConfig(model=args.model, retries=0), emit=emit)
    finally:
        server.shutdown()
    memory = [mb for _, mb in samples]
    record = {
        "frames": summary.frames, "snippets": summary.scores, "alerts": summary.alerts,
        "latency_ms": {"p50": summary.latency_p50_ms, "p95": summary.latency_p95_ms}, "fps": summary.fps,
        "seconds": time.perf_counter() - started,
        "rss_mb": {"first": memory[0] if memory else None, "middle": memory[len(memory) // 2] if memory else None,
                   "last": memory[-1] if memory else None, "peak": max(memory) if memory else None},
        "rss_samples": samples,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    print(json.dumps({k: v for k, v in record.items() if k != "rss_samples"}, indent=1))


if __name__ == "__main__":
    main()
