#!/usr/bin/env python3
"""Sends one controller RPC `Status` request (u32 BE length + JSON) to
HOST:PORT, over plain TCP or, with --ca, over TLS presenting --cert/--key;
prints the answer's JSON body, or `no answer: <why>`. Used by
ci/secure_cluster.sh to show who the controller port answers."""
import argparse
import socket
import ssl
import struct


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("addr")
    ap.add_argument("--ca")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    a = ap.parse_args()
    host, port = a.addr.rsplit(":", 1)
    try:
        sock = socket.create_connection((host, int(port)), timeout=3)
        if a.ca:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
            ctx.load_verify_locations(a.ca)
            ctx.load_cert_chain(a.cert, a.key)
            sock = ctx.wrap_socket(sock, server_hostname=host)
        body = b'"Status"'
        sock.sendall(struct.pack(">I", len(body)) + body)
        got = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
            if len(got) >= 4 and len(got) >= 4 + struct.unpack(">I", got[:4])[0]:
                break
        whole = len(got) >= 4 and len(got) >= 4 + struct.unpack(">I", got[:4])[0]
        if whole:
            print(got[4:].decode("utf-8", "replace"))
        else:
            print(f"no answer: closed after {len(got)} bytes, no whole frame")
    except (OSError, ssl.SSLError) as e:
        print(f"no answer: {e}")


main()
