#!/usr/bin/env python3
"""Writes the committed seed corpus (fuzz/corpus/<target>/) from readable descriptions.

The api_sequence seeds are encoded with the same byte layout `fuzz_targets/api_sequence/action.rs` and `inputs.rs`
decodes (see `action()` there): one op byte, then that action's fields. Re-run after changing
the decoder: `python3 fuzz/seeds/make_seeds.py` (it replaces the seed files it owns, `seed-*`).
"""
import hashlib, json, os, struct, sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus")

def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)

# ---------------------------------------------------------------- catalog_parse
SEED = {"version": 1, "tracks": [{"name": "video", "selectionParams": {"codec": "avc1.64001f", "mimeType": "video/mp4",
        "width": 1920, "height": 1080, "bitrate": 5000000, "samplerate": 48000, "lang": "en"}}]}
HANG = {
  "video": {"renditions": {"video/hd": {"codec": "avc1.64001f", "description": "0164001fffe1", "codedWidth": 1280,
      "codedHeight": 720, "bitrate": 6000000, "framerate": 30.0, "optimizeForLatency": True, "container": {"kind": "legacy"}}},
      "display": {"width": 1280, "height": 720}},
  "audio": {"renditions": {"audio/data": {"codec": "opus", "sampleRate": 48000, "numberOfChannels": 2, "bitrate": 128000,
      "container": {"kind": "legacy"}}}},
  "text": {"renditions": {"subs": {"format": "vtt", "lang": "en"}}},
  "json": {"tracks": {"chat": {"mode": "stream", "compression": "deflate"}}},
  "binary": {"tracks": {"thumbnail": {"mode": "snapshot", "mime": "image/jpeg", "bitrate": 8000}}},
  "com.example.extension": {"anything": [1, 2, 3]},
}
catalogs = {
  "seed-full": json.dumps(SEED),
  "seed-minimal": '{"version":1,"tracks":[{"name":"a"},{"name":"b","selectionParams":{}},{"name":"c","selectionParams":null}]}',
  "seed-empty": '{"version":1,"tracks":[]}',
  "seed-nulls": '{"version":1,"tracks":[{"name":"d","selectionParams":{"codec":null,"width":null,"lang":"","future":"yes"}}]}',
  "seed-wrong-type": '{"version":1,"tracks":[{"name":"v","selectionParams":{"width":"1920"}}]}',
  "seed-float": '{"version":1,"tracks":[{"name":"v","selectionParams":{"height":1.5}}]}',
  "seed-negative": '{"version":1,"tracks":[{"name":"v","selectionParams":{"bitrate":-1}}]}',
  "seed-huge-number": '{"version":1,"tracks":[{"name":"v","selectionParams":{"width":4294967296,"bitrate":18446744073709551615}}]}',
  "seed-version2": '{"version":2,"tracks":[]}',
  "seed-dup-name": '{"version":1,"tracks":[{"name":"a"},{"name":"a"}]}',
  "seed-dup-key": '{"version":1,"version":1,"tracks":[]}',
  "seed-control": '{"version":1,"tracks":[{"name":"a\\u0001b"}]}',
  "seed-nul": '{"version":1,"tracks":[{"name":"a","selectionParams":{"codec":"x\\u0000y"}}]}',
  "seed-escapes": '{"version":1,"tracks":[{"name":"\\u00e9\\ud83d\\ude00\\u2028","selectionParams":{"lang":"\\"q\\""}}]}',
  "hang-realistic": json.dumps(HANG),
  "hang-video-only": '{"video":{"renditions":{"v":{"codec":"hev1.1.6.L93.B0","codedWidth":1920,"codedHeight":1080}}}}',
  "hang-audio-codecs": '{"audio":{"renditions":{"a":{"codec":"mp4a.40.2","sampleRate":44100,"numberOfChannels":1},"b":{"codec":"flac","sampleRate":96000,"numberOfChannels":2}}}}',
  "hang-broadcast-ref": '{"video":{"renditions":{"v":{"codec":"av01.0.08M.08","broadcast":"other"}}}}',
  "hang-text-formats": '{"text":{"renditions":{"a":{"format":"ttml"},"b":{"format":"utf8"},"c":{"format":"srt","lang":"de"}}}}',
  "hang-binary-video-mime": '{"binary":{"tracks":{"b":{"mode":"snapshot","mime":"video/mp4"}}}}',
  "hang-name-clash": '{"video":{"renditions":{"x":{"codec":"vp8"}}},"json":{"tracks":{"x":{"mode":"stream"}}}}',
  "hang-empty-codec": '{"video":{"renditions":{"v":{"codec":""}}}}',
  "empty-object": "{}",
  "unknown-keys": '{"foo":1,"bar":[{}]}',
  "array": "[]",
  "number": "42",
  "null": "null",
  "deep": "[" * 200 + "]" * 200,
  "deep-object": '{"x":' * 130 + "1" + "}" * 130,
  "truncated": '{"version":1,"tracks":[{"name":"a"',
  "invalid-utf8": b'{"version":1,"tracks":[{"name":"\xff\xfe"}]}',
  "bom": b'\xef\xbb\xbf{"version":1,"tracks":[]}',
}
for name, data in catalogs.items():
    write("catalog_parse", name, data)

# ---------------------------------------------------------------- versions
lite = ["moq-lite-0%d" % i for i in range(1, 8)]
ietf = ["moq-transport-%d" % i for i in range(14, 23)]
versions = {
  "one": "moq-lite-05", "two": "moq-lite-05,moq-transport-14", "spaces": " moq-lite-03 , moq-lite-04 ",
  "dup": "moq-lite-03,moq-lite-03", "empty": "", "comma": ",", "trailing": "moq-lite-01,", "unknown": "moq-lite-99",
  "all-lite": ",".join(lite), "all-ietf": ",".join(ietf), "case": "MOQ-LITE-05", "nul": b"moq-lite-05\0junk",
  "utf8": "moq-lite-0\u0665", "invalid-utf8": b"moq-lite-\xff", "tab": "moq-lite-05\t", "long": ",".join(["moq-lite-01"] * 400),
}
for name, data in versions.items():
    write("versions", name, data)

# ---------------------------------------------------------------- url_parse
urls = {
  "https": "https://localhost:4443/anon", "moqt": "moqt://127.0.0.1:4443", "moql": "moql://[::1]:4443/x",
  "http": "http://localhost:4443", "creds": "https://user:secret@relay.example:443/room?jwt=token",
  "ftp": "ftp://example.com", "no-host": "https://", "no-scheme": "localhost:4443", "empty": "", "space": " https://a ",
  "idn": "https://b\u00fccher.example/", "punycode": "https://xn--bcher-kva.example/", "ipv6-zone": "moqt://[fe80::1%25eth0]:1",
  "port-overflow": "https://a:65536", "file": "file:///etc/passwd", "data": "data:text/plain,hi", "backslash": "https:\\\\a\\b",
  "percent": "https://%61:%62@a/%2e%2e/?q=%00", "fragment": "moqt://h:1/p#frag", "nul": b"https://a\0b",
  "invalid-utf8": b"https://\xff/", "long": "https://a/" + "p" * 8200, "tabs": "ht\ttps://a\n/b",
}
for name, data in urls.items():
    write("url_parse", name, data)

# ---------------------------------------------------------------- client_config
# Layout: size selector, timeout (selector[, value]), then each string as selector (+ payload)...
configs = {
  "zeros": bytes(64),
  "full-defaults": bytes([3]) + bytes(63),
  "v1": bytes([0]) + bytes(40),
  "v2": bytes([1]) + bytes(40),
  "v3": bytes([2]) + bytes(40),
  "fingerprint": bytes([3, 0, 0, 0, 1, 0]) + bytes(40),
  "fingerprint-colons": bytes([3, 0, 0, 0, 1, 1]) + bytes(40),
  "pem": bytes([3, 0, 1, 0]) + bytes(40),
  "conflict": bytes([3, 0, 1, 0, 1, 0, 1, 1]) + bytes(40),
  "versions": bytes([3, 2, 0, 0, 0, 1, 1]) + bytes(40),
  "timeout-max": bytes([3, 4]) + bytes(40),
  "timeout-over": bytes([3, 5]) + bytes(40),
  "random-size": bytes([5, 0x33, 0x01]) + bytes(40),
  "long-pem": bytes([3, 0, 4, 1]) + bytes(40),
}
for name, data in configs.items():
    write("client_config", name, data)
for i in range(12):
    write("client_config", "random-%02d" % i, hashlib.sha512(b"cfg%d" % i).digest()[: 24 + 3 * i])

# ---------------------------------------------------------------- api_sequence
class A:
    def __init__(self):
        self.b = bytearray([0])  # clients_first = false
    def u8(self, *vals):
        self.b.extend(vals); return self
    def u16(self, v): self.b.extend(struct.pack("<H", v)); return self
    def live(self, i=0): return self.u8(0, i)
    def stale(self, i=0): return self.u8(11, i)
    def null(self): return self.u8(12)
    def wrong(self, i=0): return self.u8(13, i)
    def raw(self, v): self.u8(14); self.b.extend(struct.pack("<Q", v)); return self
    def pool(self, i): return self.u8(0, i)           # name(): a pool entry
    def short(self, data):
        data = data.encode() if isinstance(data, str) else data
        return self.u8(len(data)).u8(*data)
    def cfg(self, versions=0, poll=0, reconnect=0, idle=0, keep=0):
        # size full, raw_size, timeout 200+, trust pinned, versions, fuzz_versions "", reconnect,
        # reconnect_initial/max selectors, bind none, keep_alive, idle, poll_events, buffer, overflow.
        self.u8(0).u16(0).u8(0).u16(300).u8(0).u8(versions).short(b"").u8(reconnect).u8(0).u8(0).u8(0)
        return self.u8(keep, idle, poll, 0, 0)
    def create_ex(self, **kw): self.u8(1); return self.cfg(**kw)
    def connect(self, c=0, url=0, cb=True, asynchronous=False):
        self.u8(4).live(c).u8(url).u8(1 if cb else 0).u8(1 if asynchronous else 0); return self
    def publisher(self, c=0, ns=0, track=0, how=(0,)):
        self.u8(10).live(c).pool(ns).pool(track).u8(*how); return self
    def publish(self, data="hello", p=0, mode_sel=0):
        self.u8(13).live(p).u8(6).short(data).u8(mode_sel); return self
    def publish_json(self, p=0, which=0):
        self.u8(14).live(p).u8(0, which); return self
    def subscribe(self, c=0, ns=0, track=0, how=(0, 1)):
        self.u8(22).live(c).pool(ns).pool(track).u8(*how); return self
    def sleep(self, ms): return self.u8(38, ms)
    def poll(self, c=0, max_sel=3, timeout_sel=4): return self.u8(29).live(c).u8(max_sel, 1, timeout_sel)
    def defer(self): return self.u8(39)
    def op(self, code, *rest): return self.u8(code, *rest)

def sub_opts(delivery_poll=False, start=0):
    # bool, size, start sel, start_group (bool + u8), max_latency sel, priority, wait, delivery sel, capacity sel, policy sel
    return (1, 0, start, 1, 0, 0, 127, 0, 1 if delivery_poll else 0, 0, 0)

seeds = {}
seeds["pubsub"] = (A().create_ex().connect().publisher().subscribe().publish().publish("world").sleep(30)
                   .op(33, 0).live(0).u8(1, 0).op(33, 2).live(0).u8(1, 0).op(27).live(0).op(12).live(0).op(3).live(0))
seeds["poll"] = (A().create_ex(poll=1).connect().publisher()
                 .subscribe(how=(1,) + sub_opts(delivery_poll=True) + (0, 0))
                 .publish().publish("2").sleep(20).poll().poll().op(26).live(0))
seeds["catalog"] = (A().create_ex().connect().publisher(track=2)
                    .op(21).live(0).u8(2).pool(0).u8(1, 0).u8(1, 0).u8(0, 0, 0, 0, 0).pool(1).u8(1, 1).u8(1, 1).u8(0, 0, 0, 0, 0).u8(1).u8(1)
                    .subscribe(track=2, how=(2, 1)).sleep(30).op(28).live(0))
seeds["catalog-raw"] = (A().create_ex().connect().publisher(track=2).publish_json(which=0)
                        .subscribe(track=2, how=(3, 0, 1, 1)).sleep(20).publish_json(which=2).sleep(20).op(28).live(0))
seeds["groups"] = (A().create_ex().connect().publisher(how=(2, 1, 0, 0, 0, 0, 0))
                   .subscribe(how=(1, 0, 1, 1)).op(15).live(0).u8(1).op(16).live(0).u8(6).short("a").u8(0)
                   .op(16).live(0).u8(6).short("b").u8(1).op(18).live(0).op(19).live(0).op(20).live(0).u8(2).sleep(20))
seeds["announces"] = (A().create_ex().op(31).live(0).pool(0).u8(1).connect().op(9).live(0).pool(1)
                      .publisher(ns=2).op(30).live(0).u8(1).sleep(20).op(32).live(0))
seeds["log"] = (A().op(34, 3, 1).create_ex().connect().publisher().op(34, 4, 0).sleep(10).op(34, 0, 3))
seeds["defer-destroy"] = (A().create_ex().connect().publisher().subscribe()
                          .defer().op(27).live(0).defer().op(3).live(0).publish().publish().sleep(40))
seeds["defer-blocking"] = (A().create_ex().create_ex().connect(0).publisher(0)
                           .subscribe(0).defer().op(4).live(1).u8(0, 1, 0).defer().op(22).live(1).pool(0).pool(0).u8(0, 1)
                           .publish().sleep(50).publish())
seeds["stale"] = (A().create_ex().connect().publisher().subscribe().op(27).live(0).op(12).live(0).op(3).live(0)
                  .op(13).stale(0).u8(0).op(25).stale(0).op(6).stale(0).op(29).stale(0).u8(1, 0, 0).op(33, 1).stale(0).u8(1, 0)
                  .op(13).wrong(0).u8(0).op(3).raw(0xdeadbeef).op(12).raw(0x12).op(27).null())
# op 8: which (0 last error, 1 protocol version, 2 transport, 3 query track), handle, then
# buf (raw length, length selector, NULL selector) or, for 3, names and a struct_size selector.
seeds["texts"] = (A().create_ex().op(8, 0).live(0).u8(0, 6, 1).op(8, 1).live(0).u8(0, 4, 1).connect()
                  .op(8, 1).live(0).u8(0, 4, 1).op(8, 2).live(0).u8(0, 5, 1).op(8, 0).live(0).u8(0, 1, 1)
                  .op(8, 1).live(0).u8(0, 0, 0).op(7).live(0).op(33, 0).live(0).u8(1, 4))
seeds["fetch"] = (A().create_ex(versions=4 + 8 * 1).connect().publisher(how=(2, 1, 0, 0, 0, 0, 0)).op(15).live(0).u8(1)
                  .op(16).live(0).u8(6).short("g0").u8(0).op(18).live(0).op(8, 3).live(0).pool(0).pool(0).u8(1, 0)
                  .subscribe(how=(4, 1, 0, 0, 1, 1)).sleep(30).subscribe(how=(4, 1, 3, 0, 1, 1)).sleep(20))
seeds["async"] = (A().create_ex().connect(asynchronous=True).sleep(40).op(6).live(0).connect(asynchronous=True).connect().sleep(20))
seeds["two-clients"] = (A().create_ex().create_ex().connect(0).connect(1).publisher(0).subscribe(1).publish().publish("x").sleep(30)
                        .op(3).live(0).sleep(20).op(26).live(0))
seeds["datagram"] = (A().create_ex(versions=4 + 8 * 4).connect().publisher(how=(1, 2)).subscribe(how=(1, 0, 1, 1))
                     .publish(mode_sel=2).publish(mode_sel=2).sleep(20))
seeds["secret-url"] = A().op(34, 4, 1).create_ex().connect(url=10).op(8, 0).live(0).u8(0, 6, 1)
seeds["bad-urls"] = A().create_ex().connect(url=11).connect(url=12).connect(url=13).connect(url=14).u16(9).connect(url=8).u8(2)
seeds["reconnect"] = A().create_ex(reconnect=1, idle=1, keep=1).connect().publisher().subscribe().sleep(50).op(6).live(0).connect()
seeds["misc"] = A().op(36, 0).op(36, 1).op(36, 2).op(36, 3).op(36, 4).op(35, 0).op(35, 1).op(35, 2).op(35, 3).op(35, 4).op(35, 5)
seeds["relay"] = A().op(37, 0).live(0).pool(0).op(37, 1).live(0).pool(0).op(37, 3).live(0).pool(0).op(37, 2).live(1).pool(0)
seeds["shutdown"] = A().create_ex().connect().publisher().op(37, 16).live(0).pool(0).u8(0, 0).create_ex().connect()
for name, a in seeds.items():
    write("api_sequence", name, bytes(a.b))
for i in range(6):
    write("api_sequence", "random-%02d" % i, hashlib.sha512(b"api%d" % i).digest() * 2)
print("seeds written under", os.path.normpath(ROOT))
