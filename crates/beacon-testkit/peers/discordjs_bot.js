// A minimal discord.js bot written the way its guide shows, pointed at the fake Discord.
// FAKE_URL (http://127.0.0.1:P) and FAKE_TOKEN come from the environment. It prints
// `READY <guilds>` once connected and answers "ping" with "pong from discord.js".
const { Client, Events, GatewayIntentBits } = require("discord.js");

const client = new Client({
  intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent],
  rest: { api: `${process.env.FAKE_URL}/api` },
});

client.once(Events.ClientReady, (c) => {
  console.log(`READY ${c.guilds.cache.size}`);
});

client.on(Events.MessageCreate, async (message) => {
  if (message.author.id === client.user.id) return;
  if (message.content === "ping") {
    await message.channel.send("pong from discord.js");
  }
});

client.login(process.env.FAKE_TOKEN);
