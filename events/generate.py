#!/usr/bin/env python3
"""Writes the sample events for `cargo lambda invoke` from the project's fixtures.

Each webhook event is an API Gateway HTTP API (payload 2.0) request as API Gateway
delivers it: binary bodies (multipart) base64-encoded. They address the demo user's
backends that `make run` creates, whose tokens derive from the local token secret
(`watchstate-local`) and the fixed nonces `demo-{backend}-nonce`.
Run from the repository root: python3 events/generate.py
"""
import base64, hashlib, hmac, json, struct, pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"
SECRET = b"watchstate-local"
BOUNDARY = "------------------------7d3f9a2b1c"
THUMB = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")


def token(user, backend, nonce):
    mac = hmac.new(SECRET, digestmod=hashlib.sha256)
    for part in (user, backend, nonce):
        b = part.encode()
        mac.update(struct.pack(">Q", len(b)))
        mac.update(b)
    return "wst_" + mac.hexdigest()


def multipart(parts):
    out = b""
    for name, filename, ctype, data in parts:
        out += f"--{BOUNDARY}\r\n".encode()
        disp = f'Content-Disposition: form-data; name="{name}"'
        if filename:
            disp += f'; filename="{filename}"'
        out += (disp + "\r\n").encode()
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def http_event(method, path, headers, body, binary, query=""):
    headers = {"host": "abc123.execute-api.eu-west-1.amazonaws.com", **headers,
               "content-length": str(len(body))}
    return {
        "version": "2.0",
        "routeKey": f"{method} /webhook/{{token}}" if path.startswith("/webhook/") else "ANY /v1/{proxy+}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.10", "userAgent": headers.get("user-agent", "")},
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "routeKey": f"{method} /webhook/{{token}}" if path.startswith("/webhook/") else "ANY /v1/{proxy+}",
            "stage": "$default",
            "time": "27/Nov/2026:05:00:00 +0000",
            "timeEpoch": 1795755600000,
        },
        "pathParameters": {"token": path.rsplit("/", 1)[-1]} if path.startswith("/webhook/") else {"proxy": path[4:]},
        "isBase64Encoded": binary,
        "body": base64.b64encode(body).decode() if binary else body.decode(),
    }


def webhook(name, backend, method, ctype, ua, body, binary):
    path = "/webhook/" + token("demo", backend, f"demo-{backend}-nonce")
    headers = {"content-type": ctype}
    if ua:
        headers["user-agent"] = ua
    write(f"webhook-{name}.json", http_event(method, path, headers, body, binary))


def write(name, event):
    (ROOT / "events" / name).write_text(json.dumps(event, indent=2, ensure_ascii=False) + "\n")


def main():
    mp = f"multipart/form-data; boundary={BOUNDARY}"
    plex = (FIX / "written/plex/media.scrobble-episode-localized.json").read_bytes()
    webhook("plex-scrobble", "plex", "POST", mp, "PlexMediaServer/1.40.2.8395-c67dce28e",
            multipart([("payload", None, "application/json", plex),
                       ("thumb", "thumb.jpg", "image/jpeg", THUMB)]), True)
    taut = (FIX / "written/tautulli/watched-episode.json").read_bytes()
    webhook("tautulli-watched", "plex", "PUT", "application/json", "Tautulli/v2.14.3", taut, False)
    jf = (FIX / "webhooks/jellyfin/playbackstop-movie-completed-10.8.8-movary.json").read_bytes()
    webhook("jellyfin-playbackstop", "jellyfin", "POST", "text/plain; charset=utf-8",
            "Jellyfin-Server/10.8.8", jf, False)
    emby = (FIX / "written/emby/item.markplayed-movie-4.8.json").read_bytes()
    webhook("emby-markplayed", "emby", "POST", mp, "Emby Server/4.8.11.0",
            multipart([("data", None, None, emby)]), True)
    # The push queue's batch as Lambda's event source mapping delivers it: each body is
    # the EventBridge event of one state change.
    change = {"id": "0006448a5c2b3e00-0123456789ab", "user": "demo", "item_id": "sample-item",
              "origin": "plex", "watched": True, "progress_ms": None,
              "state_updated_at": "2026-11-27T05:00:00Z", "kind": "watched"}
    bus_event = {"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
                 "detail-type": "StateChange", "source": "watchstate",
                 "account": "123456789012", "time": "2026-11-27T05:00:00Z",
                 "region": "eu-west-1", "resources": [], "detail": change}
    write("push-sqs-batch.json", {"Records": [{
        "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        "body": json.dumps(bus_event),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795755600000"},
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(json.dumps(bus_event).encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:watchstate-PushQueue",
        "awsRegion": "eu-west-1"}]})
    write("api-health.json", http_event("GET", "/v1/health", {}, b"", False))
    write("api-list-users.json", http_event(
        "GET", "/v1/users", {"authorization": "Bearer replace-with-your-admin-key"}, b"", False))


if __name__ == "__main__":
    main()
