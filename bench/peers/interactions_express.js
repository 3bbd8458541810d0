// Discord's official Node interactions stack, as in discord/discord-example-app: express with
// discord-interactions' verifyKeyMiddleware, answering the same /status command as Beacon with a
// type-4 (CHANNEL_MESSAGE_WITH_SOURCE) ephemeral embed. PUBLIC_KEY and PORT from the environment;
// run with NODE_ENV=production. Prints `LISTENING <port>` when ready.
const express = require("express");
const {
  InteractionResponseFlags,
  InteractionResponseType,
  InteractionType,
  verifyKeyMiddleware,
} = require("discord-interactions");

const app = express();
const started = Date.now();

app.post("/interactions", verifyKeyMiddleware(process.env.PUBLIC_KEY), async (req, res) => {
  const { type, data } = req.body;
  if (type === InteractionType.PING) {
    return res.send({ type: InteractionResponseType.PONG });
  }
  if (type === InteractionType.APPLICATION_COMMAND && data.name === "status") {
    const uptime = Math.floor((Date.now() - started) / 1000);
    return res.send({
      type: InteractionResponseType.CHANNEL_MESSAGE_WITH_SOURCE,
      data: {
        flags: InteractionResponseFlags.EPHEMERAL,
        embeds: [
          {
            title: "Status",
            color: 0x5865f2,
            fields: [
              { name: "Version", value: "bench", inline: true },
              { name: "Uptime", value: `${uptime}s`, inline: true },
              { name: "Health", value: "ok" },
            ],
          },
        ],
      },
    });
  }
  return res.status(400).json({ error: "unknown command" });
});

const server = app.listen(Number(process.env.PORT || 0), "127.0.0.1", () => {
  console.log(`LISTENING ${server.address().port}`);
});
