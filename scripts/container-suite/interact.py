#!/usr/bin/env python3
"""Sends Beacon one signed HTTP interaction, as Discord does, and checks the answer.

    interact.py keygen                    -> prints "PRIVATE_HEX PUBLIC_HEX"
    interact.py ask URL PRIVATE_HEX TEXT  -> POSTs /ask TEXT to URL (…/interactions), prints the answer

The payload has the shape of Discord's APPLICATION_COMMAND interaction; the signature is
Ed25519 over timestamp + body, checked by Beacon against BEACON_DISCORD_PUBLIC_KEY.
"""
import json
import random
import sys
import time
import urllib.request

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization


def keygen():
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    print(private.hex(), public.hex())


def snowflake():
    return str(random.randint(10**17, 10**18))


def ask(url, private_hex, text):
    """Asks up to 5 times in one guild, each time as another member: the first question in a new
    guild may be slow enough that Beacon defers it (type 5, the answer then goes to Discord's
    REST API, which is not here); a deferral is reported and the next question must be answered."""
    guild, channel, app = snowflake(), snowflake(), snowflake()
    for attempt in range(5):
        answer = ask_once(url, private_hex, text, guild, channel, snowflake(), app)
        if answer.get("type") == 5:
            print("deferred (type 5), asking again", file=sys.stderr)
            continue
        break
    content = (answer.get("data") or {}).get("content") or ""
    embeds = (answer.get("data") or {}).get("embeds") or []
    text_out = content + " ".join((e.get("description") or "") for e in embeds)
    if answer.get("type") != 4 or not text_out.strip():
        sys.exit("no answer in the interaction response: %s" % json.dumps(answer))
    print(text_out.strip().splitlines()[0])


def ask_once(url, private_hex, text, guild, channel, user, app):
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(private_hex))
    perms = str(1 << 11 | 1 << 10)
    payload = {
        "id": snowflake(),
        "application_id": app,
        "type": 2,
        "token": "aW50ZXJhY3Rpb246" + "%040x" % random.getrandbits(160),
        "version": 1,
        "guild_id": guild,
        "guild": {"id": guild, "locale": "en-US", "features": []},
        "channel_id": channel,
        "channel": {"id": channel, "type": 0, "guild_id": guild, "name": "general", "position": 0,
                    "permission_overwrites": [], "permissions": perms},
        "member": {"user": {"id": user, "username": "suite", "discriminator": "0", "global_name": None,
                            "avatar": None},
                   "roles": [], "joined_at": "2024-01-01T00:00:00.000000+00:00", "deaf": False, "mute": False,
                   "flags": 0, "permissions": perms},
        "data": {"id": snowflake(), "name": "ask", "type": 1,
                 "options": [{"name": "question", "type": 3, "value": text}]},
        "app_permissions": perms,
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": guild},
        "context": 0,
        "attachment_size_limit": 26214400,
    }
    body = json.dumps(payload).encode()
    timestamp = str(int(time.time()))
    signature = key.sign(timestamp.encode() + body).hex()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "content-type": "application/json",
        "x-signature-ed25519": signature,
        "x-signature-timestamp": timestamp,
    })
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


if __name__ == "__main__":
    if sys.argv[1:2] == ["keygen"]:
        keygen()
    elif sys.argv[1:2] == ["ask"] and len(sys.argv) == 5:
        ask(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
