"""`vad-pipeline watch`: a stream scored as it plays raises an alert inside the injected anomaly, from a file in real
time and from an HTTP stream on loopback that drops once and is reopened."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import pytest

from vad_pipeline.commands.cli import main
from vad_pipeline.commands.watch import WatchConfig, parse_source, watch
from vad_pipeline.core.workspace import Workspace
from vad_pipeline.errors import UserError
from vad_pipeline.synthetic.videos import generate_dataset, jpeg_frames, render_video

ANOMALY = (64, 128)  # frames of the vehicle in the watched video
FRAMES = 160


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, i3d_weights: Path):
    """mil trained on the demo's 12 + 12 generated videos with the real Kinetics-400 I3D (half of the normal
    training videos held out to calibrate the threshold at 5 % false alarms), and a new video (25 fps) whose frames
    64-127 hold a vehicle."""
    root = tmp_path_factory.mktemp("watch")
    generate_dataset(root / "data", per_class=12, frames=64, seed=0)
    workdir = root / "work"
    assert main(["extract", "--stages", "features", str(root / "data" / "videos"), "--workdir", str(workdir),
                 "-q"]) == 0
    bundle = root / "mil.pt"
    assert main(["train", "--method", "mil", "--labels", str(root / "data" / "labels.csv"), "--out", str(bundle),
                 "--holdout", "0.5", "--far", "0.05", "--workdir", str(workdir), "-q"]) == 0
    video = root / "live.mp4"
    render_video(video, seed=4242, frames=FRAMES, event="vehicle", interval=ANOMALY)
    return workdir, bundle, video


def _check_alert_inside_the_anomaly(events: list[dict]) -> dict:
    scores = [e for e in events if e["event"] == "score"]
    alerts = [e for e in events if e["event"] == "alert"]
    ends = [e for e in events if e["event"] == "alert_end"]
    assert len(scores) == FRAMES // 16 and len(ends) == len(alerts) >= 1
    inside = [a for a in alerts if a["start_frame"] < ANOMALY[1] and a["start_frame"] + 16 > ANOMALY[0]]
    assert inside, f"no alert inside frames {ANOMALY}: {alerts}"
    peak = max(scores, key=lambda e: e["score"])
    assert ANOMALY[0] - 16 < peak["start_frame"] < ANOMALY[1], peak
    (summary,) = [e for e in events if e["event"] == "summary"]
    assert summary["frames"] == FRAMES and summary["snippets"] == FRAMES // 16
    assert 0 < summary["latency_ms"]["p50"] <= summary["latency_ms"]["p95"]
    return summary


@pytest.mark.slow
def test_watch_a_file_in_real_time_alerts_inside_the_anomaly(trained, tmp_path: Path) -> None:
    workdir, bundle, video = trained
    events: list[dict] = []
    started = time.perf_counter()
    summary = watch(Workspace(workdir), str(video), WatchConfig(model=bundle, realtime=True, out=tmp_path / "clips"),
                    emit=events.append)
    seconds = time.perf_counter() - started
    report = _check_alert_inside_the_anomaly(events)
    assert seconds >= FRAMES / 25 * 0.95  # played at its frame rate, not faster
    assert 0 < report["fps"] <= 26  # never faster than the source (how close to 25 depends on the CPU)
    assert summary.clips and all(cv2.VideoCapture(str(p)).get(cv2.CAP_PROP_FRAME_COUNT) > 16 for p in summary.clips)
    print(f"\nwatch file: latency p50 {report['latency_ms']['p50']} ms, p95 {report['latency_ms']['p95']} ms, "
          f"{report['fps']} frames/s sustained")


def _mjpeg_server(video: Path, drop_after: int):
    """Serve ``video`` as an MJPEG stream at 25 frames/s over HTTP on loopback; the first connection drops after
    ``drop_after`` frames, the next one goes on where it stopped."""
    jpegs = jpeg_frames(video)
    position = {"next": 0, "connections": 0}

    class Stream(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            position["connections"] += 1
            stop = drop_after if position["connections"] == 1 else len(jpegs)
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            while position["next"] < stop:
                jpeg = jpegs[position["next"]]
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                                 + jpeg + b"\r\n")
                position["next"] += 1
                time.sleep(1 / 25)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Stream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, position


@pytest.mark.slow
def test_watch_an_http_stream_that_drops_once(trained, tmp_path: Path, caplog) -> None:
    workdir, bundle, video = trained
    server, position = _mjpeg_server(video, drop_after=80)
    events: list[dict] = []
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/live.mjpg"
        with caplog.at_level("WARNING"):
            summary = watch(Workspace(workdir), url, WatchConfig(model=bundle, retries=2), emit=events.append)
    finally:
        server.shutdown()
    # the source's end: the server has no more frames, so the reopen attempts fail and the run ends
    assert position["connections"] >= 2 and summary.reconnects == 1
    assert any("dropped; reopening" in r.message for r in caplog.records)
    report = _check_alert_inside_the_anomaly(events)
    print(f"\nwatch http: latency p50 {report['latency_ms']['p50']} ms, p95 {report['latency_ms']['p95']} ms, "
          f"{report['fps']} frames/s sustained")


def test_sources_are_understood_or_one_clear_line(tmp_path: Path) -> None:
    assert parse_source("0") == (0, True)
    assert parse_source("rtsp://camera.local/stream") == ("rtsp://camera.local/stream", True)
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"x")
    assert parse_source(str(video)) == (str(video), False)
    with pytest.raises(UserError, match="no such file"):
        parse_source(str(tmp_path / "missing.mp4"))
