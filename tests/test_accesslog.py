"""polygen.accesslog: the JSON lines `polygen nginx --access-log` makes nginx write, read as they
grow, across rotation, truncation and restarts. (With a real nginx: tests/test_status_e2e.py.)"""

from __future__ import annotations

import json
import os

from polygen.accesslog import LOG_FORMAT, Tail, parse_line, source_of


def entry(uri, status=200, ua="FileTransport PolycomVVX-VVX_410-UA/5.9.7.4477 Type/Application", method="GET",
          time="2026-11-29T10:58:21+00:00"):
    return (json.dumps({"time": time, "remote_addr": "192.0.2.7", "method": method, "uri": uri,
                        "status": status, "user_agent": ua}) + "\n").encode()


def test_the_format_nginx_writes_is_the_one_parsed():
    # what nginx makes of LOG_FORMAT for one request (escape=json: the UA's quote escaped)
    line = (LOG_FORMAT.replace("$time_iso8601", "2026-11-29T10:58:21+00:00").replace("$remote_addr", "192.0.2.7")
            .replace("$request_method", "GET").replace("$request_uri", "/64167f000410-phone.cfg")
            .replace("$status", "404").replace("$http_user_agent", 'evil \\" ua'))
    r = parse_line(line.encode())
    assert (r.address, r.method, r.uri, r.status, r.user_agent) == (
        "192.0.2.7", "GET", "/64167f000410-phone.cfg", 404, 'evil " ua')
    assert r.time == 1795949901.0


def test_lines_that_are_not_json_access_log_lines_are_skipped():
    assert parse_line(b'127.0.0.1 - - [29/Nov/2026:10:58:21 +0000] "GET / HTTP/1.1" 200') is None
    assert parse_line(b'{"time": "yesterday", "method": "GET", "uri": "/", "status": 200}') is None
    assert parse_line(b'{"time": "2026-11-29T10:58:21+00:00", "method": "GET", "status": 200}') is None


def test_reads_only_complete_new_lines(tmp_path):
    log = tmp_path / "access.log"
    log.write_bytes(entry("/a") + entry("/b")[:20])
    tail = Tail(log)
    assert [r.uri for r in tail.read()] == ["/a"]
    assert tail.read() == []
    with open(log, "ab") as fh:
        fh.write(entry("/b")[20:] + b"garbage\n" + entry("/c"))
    assert [r.uri for r in tail.read()] == ["/b", "/c"]
    assert tail.bad_lines == 1
    source, inode, position = tail.offset
    assert source == source_of(log) and position == log.stat().st_size
    tail.close()


def test_rotation_reads_the_old_file_to_its_end_then_the_new_one(tmp_path):
    log = tmp_path / "access.log"
    log.write_bytes(entry("/1"))
    tail = Tail(log)
    assert [r.uri for r in tail.read()] == ["/1"]
    with open(log, "ab") as fh:
        fh.write(entry("/2"))  # written before the rotation, read after it
    os.rename(log, tmp_path / "access.log.1")
    log.write_bytes(entry("/3"))
    assert [r.uri for r in tail.read()] == ["/2", "/3"]
    log.write_bytes(entry("/4", ua="x"))  # truncated, then less written again (copytruncate)
    assert [r.uri for r in tail.read()] == ["/4"]
    tail.close()


def test_a_restart_goes_on_where_the_last_run_stopped(tmp_path):
    log = tmp_path / "access.log"
    log.write_bytes(entry("/1") + entry("/2"))
    first = Tail(log)
    first.read()
    _, inode, position = first.offset
    first.close()
    with open(log, "ab") as fh:
        fh.write(entry("/3"))
    again = Tail(log, (inode, position))
    assert [r.uri for r in again.read()] == ["/3"]
    again.close()
    other = Tail(log, ("0:0", position))  # another file by that name since: read it all
    assert [r.uri for r in other.read()] == ["/1", "/2", "/3"]
    other.close()


def test_a_missing_log_is_waited_for(tmp_path):
    log = tmp_path / "access.log"
    tail = Tail(log)
    assert tail.read() == [] and tail.offset is None
    log.write_bytes(entry("/1"))
    assert [r.uri for r in tail.read()] == ["/1"]
    tail.close()
