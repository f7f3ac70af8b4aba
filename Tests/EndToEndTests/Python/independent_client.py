#!/usr/bin/env python3
"""An independent client (Python `websockets` + `cryptography`, no Flowchain code) that speaks to a
running node's device endpoints and /rpc, and re-verifies a proof from first principles.

Usage: independent_client.py ws://127.0.0.1:PORT      exit 0 when every check holds.
       independent_client.py --proof ws://127.0.0.1:PORT READING-ID OWNER-KEY
           asks that node (any node of a ring) for the reading's proof and verifies it against
           the key of the node whose chain holds it."""
import asyncio, hashlib, json, struct, sys

import websockets
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

PROOF_MODE = sys.argv[1] == "--proof"
BASE = (sys.argv[2] if PROOF_MODE else sys.argv[1]).rstrip("/")


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok:", what)


async def recv_json(ws, timeout=10):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def device_endpoints():
    dev = "py-sensor"
    async with websockets.connect(f"{BASE}/object/{dev}/status") as status, \
               websockets.connect(f"{BASE}/object/{dev}/viewer") as viewer:
        check((await recv_json(status)) == {"isAlive": False}, "status starts with isAlive false")
        async with websockets.connect(f"{BASE}/object/{dev}/send?ack=1") as sender:
            check((await recv_json(status)) == {"isAlive": True}, "status turns true when a sender connects")
            for i in range(5):
                await sender.send(json.dumps({"temperature": 20 + i, "unit": "C"}))
                ack = await recv_json(sender)
                check("ack" in ack and ack["ack"]["device"] == dev, f"frame {i} acknowledged")
            seen = [await recv_json(viewer) for _ in range(5)]
            check([r["payload"]["temperature"] for r in seen] == [20, 21, 22, 23, 24], "viewer got the 5 readings in order")
            check([r["seq"] for r in seen] == sorted(r["seq"] for r in seen), "seqs increase")
            await sender.send("this is not json")
            check((await recv_json(sender))["error"]["kind"] == "payload_not_object", "non-JSON frame answered with an error")
            await sender.send("[1,2,3]")
            check((await recv_json(sender))["error"]["kind"] == "payload_not_object", "JSON array answered with an error")
            await sender.send(b"\x00\x01binary")
            check((await recv_json(sender))["error"]["kind"] == "binary_frame", "binary frame answered with an error")
            await sender.send(json.dumps({"temperature": 99}))
            check("ack" in await recv_json(sender), "still serving after bad frames")
        check((await recv_json(status)) == {"isAlive": False}, "status turns false when the sender leaves")


def leaf(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node(a, b):
    return hashlib.sha256(b"\x01" + a + b).digest()


def verify_proof(proof, node_key_hex):
    reading = bytes.fromhex(proof["reading"])
    header = bytes.fromhex(proof["block"])
    # Reading: version, device(short), seq, time, tq, source, payload(long), signer(32), signature(64)
    n = reading[1]
    off = 2 + n + 8 + 8 + 1 + 1
    plen = struct.unpack(">I", reading[off:off + 4])[0]
    off += 4 + plen
    signer, signature = reading[off:off + 32], reading[off + 32:off + 96]
    check(len(reading) == off + 96, "reading encoding has the documented layout")
    Ed25519PublicKey.from_public_bytes(signer).verify(signature, b"flowchain/reading/v1" + reading[:-64])
    print("ok: reading signature verifies (Ed25519, independent library)")
    m = proof["merkle"]
    h, i, count = leaf(reading), m["index"], m["count"]
    sib = [bytes.fromhex(s) for s in m["siblings"]]
    while count > 1:
        if i % 2 == 1:
            h = node(sib.pop(0), h)
        elif i + 1 < count:
            h = node(h, sib.pop(0))
        count, i = (count + 1) // 2, i // 2
    check(not sib, "every sibling used once")
    body = header[:-64]
    root = body[1 + 8 + 32 + 8 + 32:1 + 8 + 32 + 8 + 32 + 32]
    owner = body[1 + 8 + 32 + 8:1 + 8 + 32 + 8 + 32]
    check(h == root, "Merkle path leads to the block's root")
    check(owner.hex() == node_key_hex, "block owner is the node")
    Ed25519PublicKey.from_public_bytes(owner).verify(header[-64:], b"flowchain/segment/v1" + body)
    print("ok: block signature verifies")


async def rpc():
    async with websockets.connect(f"{BASE}/rpc") as ws:
        async def call(method, params=None, id=1):
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": id, "method": method, "params": params or {}}))
            return await recv_json(ws)

        info = (await call("info"))["result"]
        r = await call("submit", {"device": "py-rpc", "payload": {"co2": 415}})
        ack = r["result"]
        check(ack["device"] == "py-rpc" and len(ack["id"]) == 64, "rpc submit acknowledged")
        again = await call("submit", {"device": "py-rpc", "payload": {"co2": 416}})
        check("result" in again, "second submit acknowledged")
        page = (await call("readings", {"device": "py-rpc"}))["result"]
        check([x["payload"]["co2"] for x in page["readings"]] == [415, 416], "readings query returns both")
        check((await call("no.such.method"))["error"]["code"] == -32601, "unknown method is -32601")
        check((await call("readings", {"device": 7}))["error"]["code"] == -32602, "wrong params are -32602")
        await ws.send("{not json")
        check((await recv_json(ws))["error"]["code"] == -32700, "malformed JSON is -32700")
        await ws.send(json.dumps([{"jsonrpc": "2.0", "id": 10, "method": "tip"}, {"jsonrpc": "2.0", "id": 11, "method": "nope"}]))
        batch = await recv_json(ws)
        check(isinstance(batch, list) and sorted(x["id"] for x in batch) == [10, 11], "a batch gets one response per request")
        # Wait for the reading to be sealed, then verify its proof independently.
        for _ in range(100):
            proof = (await call("proof", {"id": ack["id"]}))["result"]
            if proof.get("block"):
                break
            await asyncio.sleep(0.1)
        check(proof.get("block") is not None, "the reading was sealed into a block")
        verify_proof(proof, info["publicKey"])


async def proof_only(reading_id, owner_key):
    async with websockets.connect(f"{BASE}/rpc") as ws:
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "proof", "params": {"id": reading_id}}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
        check("result" in reply, f"the node answered the proof of {reading_id[:16]}: {reply.get('error')}")
        proof = reply["result"]
        check(proof.get("block") is not None, "the reading is sealed into a block")
        verify_proof(proof, owner_key)


async def main():
    if PROOF_MODE:
        await proof_only(sys.argv[3], sys.argv[4])
        print("independent client: proof verified")
        return
    await device_endpoints()
    await rpc()
    print("independent client: all checks passed")


asyncio.run(main())
