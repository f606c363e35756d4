"""The streams scenario's probes: the short-request client's figures and the CPU-pause watch."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench import pauses, shortclient

ROOT = Path(__file__).resolve().parent.parent


def test_percentiles_are_nearest_rank_of_the_requests_as_measured():
    ordered = [float(x) for x in range(1, 101)]
    assert shortclient.percentile(ordered, 0.50) == 50.0
    assert shortclient.percentile(ordered, 0.99) == 99.0
    assert shortclient.percentile([3.0], 0.99) == 3.0


def test_an_answer_is_read_to_its_content_length():
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nContent-Length: 311\r\n\r\n"
    assert shortclient.content_length(head) == 311


def test_a_request_is_the_chat_request_wrk_sends():
    raw = shortclient.request(8080, "sk-key", "bench")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert b"Authorization: Bearer sk-key" in head
    assert f"Content-Length: {len(body)}".encode() in head
    assert body.startswith(b'{"model":"bench"')


def test_slow_requests_are_matched_to_the_pauses_they_overlapped():
    watch = pauses.Watch()
    watch.pauses = [(10.0, 10.012), (20.0, 20.005)]
    slow = [[9.999, 10.003], [10.020, 10.030], [19.99, 20.001], [30.0, 30.01]]
    figures = watch.summary(slow)
    assert figures["pauses"] == 2 and figures["slow"] == 4
    assert figures["slow_in_pauses"] == 2
    assert figures["longest_pause_ms"] == 12.0


def test_the_watcher_notes_a_stop_of_its_process_as_a_pause():
    """`python -m bench.pauses` as the scenario runs it: stopped for 80 ms (SIGSTOP), it
    reports a late span at least that long when its stdin closes, and no other."""
    command = [sys.executable, "-m", "bench.pauses", "--core", "0", "--late", "20"]
    watcher = subprocess.Popen(
        command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    time.sleep(0.5)
    watcher.send_signal(signal.SIGSTOP)
    time.sleep(0.08)
    watcher.send_signal(signal.SIGCONT)
    time.sleep(0.2)
    out, _ = watcher.communicate(timeout=10)
    found = json.loads(out)
    assert found["core"] == 0 and found["realtime"] in (True, False)
    spans = [end - start for start, end in found["late"]]
    assert any(span >= 0.07 for span in spans), found
    assert len(spans) <= 2, found  # the stop, and at most one hold-up of the machine
