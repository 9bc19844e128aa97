"""The Python package against a broker: one the tests start over TCP
(NEO_BIN, default target/release/neo), or — with NEO_BOOTSTRAP,
NEO_TRANSPORT and NEO_TRANSPORT_OPTIONS — one already serving over another
transport (ci/bindings_af_xdp.sh: AF_XDP between network namespaces, topics
made beforehand). Produce with callbacks, group consume through the iterator,
commits honoured by the next member, context managers, asyncio, and errors
raised as NeoError with Neo's codes. One handle at a time: an AF_XDP
transport holds its interface queue."""

import asyncio
import os
import socket
import subprocess
import tempfile
import time

import pytest

import neo

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
NEO_BIN = os.environ.get("NEO_BIN", os.path.join(ROOT, "target", "release", "neo"))
TRANSPORT = os.environ.get("NEO_TRANSPORT", "tcp")
OPTIONS = os.environ.get("NEO_TRANSPORT_OPTIONS")
TOPICS = (("py-orders", 3), ("py-async", 1), ("py-restart", 2))


def producer(addr):
    return neo.Producer(addr, transport=TRANSPORT, options=OPTIONS)


def consumer(addr, group, topics, **kw):
    return neo.Consumer(addr, group=group, topics=topics, transport=TRANSPORT, options=OPTIONS, **kw)


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def broker():
    if os.environ.get("NEO_BOOTSTRAP"):
        yield os.environ["NEO_BOOTSTRAP"]
        return
    data = tempfile.mkdtemp()
    addr = f"127.0.0.1:{free_port()}"
    log = open(os.path.join(data, "serve.log"), "w")
    proc = subprocess.Popen([NEO_BIN, "serve", "--no-admin", "--data-dir", os.path.join(data, "d"),
                             "--listen", addr], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 10
    while time.time() < deadline:
        with open(os.path.join(data, "serve.log")) as f:
            if "neo serving" in f.read():
                break
        time.sleep(0.05)
    for t, parts in TOPICS:
        subprocess.run([NEO_BIN, "topics", "create", "-b", addr, t, "-p", str(parts)], check=True,
                       capture_output=True)
    yield addr
    proc.terminate()
    proc.wait(10)


def test_produce_with_callbacks_and_consume_with_the_iterator(broker):
    reports = []
    with producer(broker) as p:
        for i in range(500):
            p.send("py-orders", f"v{i}".encode(), key=f"k{i}".encode(), on_delivery=reports.append)
        p.flush()
    assert len(reports) == 500 and all(r.error is None and r.offset >= 0 for r in reports)
    seen = {}
    with consumer(broker, "py-g", ["py-orders"], idle_timeout=2.0) as c:
        for m in c:
            assert m.key == b"k" + m.value[1:]
            seen[m.value] = seen.get(m.value, 0) + 1
            if len(seen) == 500:
                break
    assert len(seen) == 500 and set(seen.values()) == {1}


def test_commits_are_honoured_by_the_next_member(broker):
    with producer(broker) as p:
        for i in range(100):
            p.send("py-restart", f"r{i}".encode())
    with consumer(broker, "py-r", ["py-restart"], idle_timeout=2.0) as c:
        first = [m.value for _, m in zip(range(60), c)]
        c.commit()
    assert len(first) == 60
    with consumer(broker, "py-r", ["py-restart"], idle_timeout=2.0) as c:
        rest = [m.value for m in c]
    assert len(rest) == 40 and not set(first) & set(rest)


def test_asyncio_send_and_consume(broker):
    async def main():
        p = producer(broker)
        reports = [await p.send_async("py-async", f"a{i}".encode()) for i in range(20)]
        p.close()
        assert [r.offset for r in reports] == list(range(20))
        got = []
        c = consumer(broker, "py-a", ["py-async"], idle_timeout=2.0)
        async for m in c:
            got.append(m.value)
            if len(got) == 20:
                break
        c.close()
        return got

    assert asyncio.run(main()) == [f"a{i}".encode() for i in range(20)]


def test_errors_are_neo_errors_with_codes(broker):
    with pytest.raises(neo.NeoError) as e:
        neo.Producer(broker, transport="carrier-pigeon")
    assert e.value.args[0] == 1
    with pytest.raises(neo.NeoError) as e:
        neo.Producer(broker, options="colour=blue")
    assert e.value.args[0] == 1
    if TRANSPORT == "tcp":
        with pytest.raises(neo.NeoError) as e:
            neo.Producer("127.0.0.1:1")
        assert e.value.args[0] == 3
    p = producer(broker)
    with pytest.raises(neo.NeoError) as e:
        p.send("no-such-topic", b"x")
    assert e.value.args[0] == 4
    p.close()
    with pytest.raises(neo.NeoError):
        p.send("py-orders", b"x")
