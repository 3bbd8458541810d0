"""A minimal discord.py bot written the way its docs show, pointed at the fake Discord.

FAKE_URL (http://127.0.0.1:P) and FAKE_TOKEN come from the environment. It prints
`READY <guilds>` once connected and answers "ping" with "pong from discord.py".
"""
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


@client.event
async def on_ready():
    print(f"READY {len(client.guilds)}", flush=True)


@client.event
async def on_message(message):
    if message.author.id == client.user.id:
        return
    if message.content == "ping":
        await message.channel.send("pong from discord.py")


client.run(os.environ["FAKE_TOKEN"], log_handler=None)
