// A minimal discord.js bot for the gateway-ingest benchmark, pointed at the fake Discord
// (FAKE_URL, FAKE_TOKEN). It counts MESSAGE_CREATEs that reach its messageCreate handler and
// prints `READY <guilds>` once connected and `COUNT <n>` every 250 ms. Run with NODE_ENV=production.
const { Client, Events, GatewayIntentBits } = require("discord.js");

const client = new Client({
  intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent],
  rest: { api: `${process.env.FAKE_URL}/api` },
});

let count = 0;
client.once(Events.ClientReady, (c) => {
  console.log(`READY ${c.guilds.cache.size}`);
  setInterval(() => console.log(`COUNT ${count}`), 250);
});
client.on(Events.MessageCreate, () => {
  count += 1;
});

client.login(process.env.FAKE_TOKEN);
