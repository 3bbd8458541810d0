"""A minimal discord.py bot for the gateway-ingest benchmark, pointed at the fake Discord.

FAKE_URL (http://127.0.0.1:P) and FAKE_TOKEN come from the environment. It counts
MESSAGE_CREATEs that reach its on_message handler and prints `READY <guilds>` once connected
and `COUNT <n>` every 250 ms.
"""
import asyncio
import os

import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

# discord.py's documented knobs for another API host: the REST base and the default gateway.
Route.BASE = os.environ["FAKE_URL"] + "/api/v10"
DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["FAKE_URL"].replace("http", "ws", 1) + "/")

intents = discord.Intents.default()
intents.message_content = True
client = discord.Client(intents=intents)
count = 0


async def report():
    while True:
        print(f"COUNT {count}", flush=True)
        await asyncio.sleep(0.25)


@client.event
async def on_ready():
    print(f"READY {len(client.guilds)}", flush=True)
    asyncio.get_running_loop().create_task(report())


@client.event
async def on_message(message):
    global count
    count += 1


client.run(os.environ["FAKE_TOKEN"], log_handler=None)
