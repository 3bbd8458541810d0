// MODE=setup: the first page of a fresh install (no bot token). MODE=dashboard: everything else.
// The dashboard in a real browser (Debian's headless Chromium through playwright-core), driven
// by the Rust e2e test `dashboard_in_a_real_browser`, which started the real binary (`beacon run`)
// and the fake Discord.
// Between steps the script prints `STEP <name>` and waits for the test to answer `ok` on stdin
// (the test checks the running bot there, e.g. that it uses a changed setting).
// Screenshots go to $SHOTS (under target/, kept as test artifacts).
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';
import { mkdirSync } from 'node:fs';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const MODE = env('MODE');
const BASE = env('BEACON_URL');
const SHOTS = env('SHOTS');
const dashboard = MODE === 'dashboard';
const OWNER = dashboard ? env('OWNER_ID') : '';
const GUILD = dashboard ? env('GUILD_NAME') : '';
const MEMBER = dashboard ? env('MEMBER_NAME') : '';
const MEMBER_ID = dashboard ? env('MEMBER_ID') : '';
const MODERATOR = dashboard ? env('MODERATOR_NAME') : '';
const DEV_ID = dashboard ? env('DEV_ID') : '';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
mkdirSync(SHOTS, { recursive: true });

const reader = createInterface({ input: process.stdin });
const lines = reader[Symbol.asyncIterator]();
async function step(name) {
  console.log(`STEP ${name}`);
  const { value, done } = await lines.next();
  if (done || value.trim() !== 'ok') throw new Error(`the test refused step ${name}: ${value}`);
}

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
}

async function text(page) {
  return page.locator('main').innerText();
}

async function shot(page, name, width) {
  // caret: 'initial' — hiding the caret would inject a style the page's CSP refuses.
  await page.screenshot({ path: `${SHOTS}/${name}-${width}.png`, fullPage: true, caret: 'initial' });
  // Nothing is wider than the screen (no sideways scrolling on a phone).
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `${name} at ${width}px scrolls sideways by ${overflow}px`);
}

// Clicks and waits for the page (swapped in by htmx or loaded) to be at a URL matching `url`
// and, when given, to show `expect` (for a page that comes back to the same URL).
async function go(page, locator, url, expect) {
  await Promise.all([page.waitForURL(url), locator.click()]);
  if (expect) await page.locator('main').getByText(expect).first().waitFor();
  await page.waitForLoadState('networkidle');
}

async function login(page) {
  await page.goto(`${BASE}/`);
  await page.getByRole('link', { name: 'Log in with Discord' }).waitFor();
  return page;
}

async function consent(page, user = OWNER) {
  await go(page, page.getByRole('link', { name: 'Log in with Discord' }), /oauth2\/authorize/);
  await page.getByLabel('Log in as (user id)').fill(user);
  await go(page, page.getByRole('button', { name: 'Authorize' }), `${BASE}/`);
  check((await text(page)).includes('Your servers'), 'the server list after login');
}

// Console errors other than a failed resource (an expected 422 or a favicon's 404): CSP
// violations and script errors.
const PAGES = { 'Settings': /\/settings$/, 'Access': /\/access$/, 'Knowledge base': /\/p\/kb$/, 'Tickets': /\/p\/tickets$/, 'Usage and cost': /\/p\/usage$/, 'FAQ': /\/p\/faq$/, 'Moderation': /\/p\/cases$/ };

// Opens a folded group (a <details>) by its heading.
async function unfold(page, heading) {
  const summary = page.locator('summary').filter({ has: page.getByRole('heading', { name: heading, exact: true }) });
  await summary.click();
}

async function nav(page, label) {
  await go(page, page.getByRole('navigation').getByRole('link', { name: label, exact: true }), PAGES[label]);
}

async function desktop(browser) {
  const width = 1280;
  const ctx = await browser.newContext({ viewport: { width, height: 900 } });
  const page = await ctx.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));

  await login(page);
  await shot(page, 'login', width);
  await consent(page);
  await shot(page, 'servers', width);

  // The server switcher.
  await page.getByLabel('Server').selectOption({ label: GUILD });
  await go(page, page.getByRole('button', { name: 'Go' }), /\/g\/\d+\/settings/);
  check((await page.locator('h1').innerText()).includes(GUILD), 'settings of the chosen server');
  await shot(page, 'settings', width);

  // The knowledge-base playground.
  await nav(page, 'Knowledge base');
  await page.getByLabel('Question').fill('How do I get a refund?');
  await go(page, page.getByRole('button', { name: 'Ask' }), /q=/);
  const kb = await text(page);
  check(kb.includes('Beacon would answer'), `the verdict: ${kb}`);
  check(kb.includes('Refunds'), 'the passage with its source');
  check((await page.locator('dd.discord strong').count()) >= 1, 'the answer is rendered as Discord shows it (bold, not asterisks)');
  await shot(page, 'kb', width);

  await nav(page, 'Settings');

  // Groups are folded (a short page on a phone); a refused value is shown beside its field,
  // in its unfolded group, and nothing is saved.
  check(!(await page.getByLabel('support.min_confidence').isVisible()), 'the groups start folded');
  await unfold(page, 'support');
  const confidence = page.getByLabel('support.min_confidence');
  await confidence.fill('1000');
  await go(page, page.getByRole('button', { name: 'Save support' }), /\/settings/, 'Nothing was saved');
  const field = page.locator('.field.invalid');
  check((await field.count()) === 1, 'one field marked');
  check((await field.innerText()).includes('support.min_confidence'), 'the refused field is marked');
  check(await field.isVisible(), 'the group with the error is unfolded');
  await shot(page, 'settings-invalid', width);

  // A valid change is stored and audited.
  await page.getByLabel('support.min_confidence').fill('60');
  await go(page, page.getByRole('button', { name: 'Save support' }), /done=saved/);
  check((await text(page)).includes('Saved.'), 'saved');
  // The history names who made each change (the owner, by name), never a bare id.
  const by = await page.locator('td[data-label="By"]').allInnerTexts();
  check(by.length > 0 && by.every((t) => !/^\d+$/.test(t.trim())), `the history names people: ${by}`);
  check(by.includes('owner'), `the owner's change is theirs by name: ${by}`);
  const history = await page.locator('section[aria-labelledby="audit-h"]').innerText();
  check(history.includes('#mod-log') && history.includes('@staff'), `channels and roles by name in the history: ${history}`);
  await step('setting-changed');

  // A module switch (the setting support.enabled): the running bot stops answering at once…
  await go(page, page.getByRole('button', { name: 'Turn support off' }), /done=module/);
  await shot(page, 'settings-module-off', width);
  await step('module-off');

  // …and answers again after a one-click revert from the history.
  await go(page, page.getByRole('button', { name: /^Revert change \d+ of support\.enabled$/ }).first(), /done=reverted/);
  check((await text(page)).includes('The change was reverted.'), 'reverted');
  await step('setting-reverted');

  // Access: find a member by name, grant, revoke after confirming.
  await nav(page, 'Access');
  await page.getByLabel('Find a member by name').fill(MEMBER.slice(0, 2));
  await go(page, page.getByRole('button', { name: 'Search' }), /q=/);
  await go(page, page.getByRole('button', { name: `Give access to ${MEMBER}` }), /done=granted/);
  check((await text(page)).includes('Access granted.'), 'granted');
  await shot(page, 'access', width);
  await step('access-granted');
  check((await text(page)).includes(MEMBER_ID), 'the new authorized user is listed');
  check((await page.locator('td[data-label="Member"]').allInnerTexts()).some((t) => t.startsWith(MEMBER)), 'by name');
  await go(page, page.getByRole('link', { name: `Revoke access of ${MEMBER}` }), /\/revoke$/);
  check((await text(page)).includes(`away from ${MEMBER}?`), 'the confirmation names the member');
  await shot(page, 'revoke-confirm', width);
  await go(page, page.getByRole('button', { name: 'Revoke access' }), /done=revoked/);
  check((await text(page)).includes('Access revoked.') && !(await text(page)).includes(MEMBER_ID), 'revoked');
  await step('access-revoked');

  // Tickets: the list, one ticket, its transcript.
  await nav(page, 'Tickets');
  await page.getByLabel('Status').selectOption('closed');
  await go(page, page.getByRole('button', { name: 'Filter' }), /status=closed/);
  await shot(page, 'tickets', width);
  await go(page, page.getByRole('link', { name: 'Open 1' }), /\/p\/tickets\/1/);
  check((await text(page)).includes('closed'), 'the ticket timeline');
  await shot(page, 'ticket', width);
  await go(page, page.getByRole('button', { name: 'Open the transcript' }), /\/transcripts\//);
  check((await page.locator('body').innerText()).includes('It was due on Monday.'), 'the transcript');
  await page.screenshot({ path: `${SHOTS}/transcript-${width}.png`, fullPage: true, caret: 'initial' });
  await page.goBack();

  // Usage and cost charts.
  await page.goto(page.url().replace(/\/p\/.*$/, '/p/usage'));
  check((await page.locator('svg.chart').count()) === 3, 'three charts');
  check((await text(page)).includes('budget'), 'the budget line');
  await shot(page, 'usage', width);

  // FAQ: the gap, a CSV import, the export.
  await nav(page, 'FAQ');
  check((await text(page)).includes('xyzzy plugh'), 'the search with no hit is a gap');
  const csv = 'question,answer,tags\n"How do I reset my password?","Choose Forgot password on the login page.",account\n"Where is my parcel?","Track it on the Orders page.",orders\n';
  await page.getByLabel('CSV file', { exact: true }).setInputFiles({ name: 'faq.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await go(page, page.getByRole('button', { name: 'Upload' }), /done=done/);
  const faq = await text(page);
  check(faq.includes('Where is my parcel?') && /Added\s*2/.test(faq), `imported: ${faq}`);
  // Each entry shows its answer, rendered as Discord shows it.
  const answers = await page.locator('td.rich[data-label="Answer"]').allInnerTexts();
  check(answers.some((a) => a.includes('Track it on the Orders page.')), `the answers: ${answers}`);
  await step('faq-imported');
  const [file] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export as CSV' }).click()]);
  check(file.suggestedFilename() === 'faq.csv', 'the export is a file');
  const exported = await (await import('node:fs/promises')).readFile(await file.path(), 'utf8');
  check(exported.includes('Where is my parcel?'), `the export holds the entries: ${exported}`);
  await shot(page, 'faq', width);

  // Moderation: the cases, filtered, and one case.
  await nav(page, 'Moderation');
  await page.getByLabel('Kind', { exact: true }).selectOption('warn');
  await go(page, page.getByRole('button', { name: 'Filter' }), /kind=warn/);
  check((await text(page)).includes('spamming links'), 'the warning is a case');
  // Names, not ids: the member warned and the moderator.
  check((await page.locator('td[data-label="Member"]').allInnerTexts()).includes(MEMBER), 'the member by name');
  check((await page.locator('td[data-label="Moderator"]').allInnerTexts()).includes(MODERATOR), 'the moderator by name');
  await shot(page, 'cases', width);
  await page.getByLabel('Kind', { exact: true }).selectOption('ban');
  await go(page, page.getByRole('button', { name: 'Filter' }), /kind=ban/);
  check((await text(page)).includes('No case matches.'), 'the filter applies');
  await page.getByLabel('Kind', { exact: true }).selectOption('');
  await go(page, page.getByRole('button', { name: 'Filter' }), /\/p\/cases\?/);
  await go(page, page.getByRole('link', { name: 'Open case 1' }), /\/p\/cases\/1$/);
  check((await text(page)).includes('spamming links'), 'the case');
  check((await text(page)).includes(MODERATOR) && !(await text(page)).includes(MEMBER_ID), 'the case names people');
  await shot(page, 'case', width);

  // Knowledge base: add a website; a refused address is shown beside its field.
  await nav(page, 'Knowledge base');
  await unfold(page, 'Add a website');
  await page.getByLabel('Name', { exact: true }).first().fill('Docs site');
  await page.getByLabel('Address', { exact: true }).fill('ftp://docs.example.test/');
  await go(page, page.getByRole('button', { name: 'Add the website' }), /\/p\/kb$/, 'Nothing was saved');
  const bad = page.locator('.field.invalid');
  check((await bad.count()) === 1 && (await bad.innerText()).includes('Address'), `the address is marked: ${await text(page)}`);
  check((await page.getByLabel('Name', { exact: true }).first().inputValue()) === 'Docs site', 'what was typed is kept');
  await shot(page, 'kb-add-invalid', width);
  await page.getByLabel('Address', { exact: true }).fill('https://docs.example.test/');
  await go(page, page.getByRole('button', { name: 'Add the website' }), /done=added/);
  check((await text(page)).includes('Docs site'), 'the source is listed');
  await step('source-added');

  // Shards: not for a server owner; the developer team's page refreshes itself.
  check((await page.getByRole('link', { name: 'Shards', exact: true }).count()) === 0, 'no Shards link for the owner');
  await shards(page, width);

  check(problems.length === 0, `browser errors (CSP or script): ${problems.join(' | ')}`);
  await ctx.close();
}

// Logs out, logs in as the developer team's member and opens the Shards page, which htmx
// refreshes in place.
async function shards(page, width) {
  await go(page, page.getByRole('button', { name: 'Log out' }), `${BASE}/`);
  await consent(page, DEV_ID);
  await go(page, page.getByRole('link', { name: 'Shards', exact: true }), /\/shards$/);
  const shardText = await text(page);
  check(shardText.includes('Server → shard') && shardText.includes('ready'), `the shards: ${shardText}`);
  check((await page.locator('#shards-live td[data-label="Server"]').allInnerTexts()).includes(GUILD), 'the map names the server');
  const checked = await page.locator('#shards-live p[role=status]').innerText();
  await page.waitForFunction((before) => document.querySelector('#shards-live p[role=status]')?.innerText !== before, checked, { timeout: 30000 });
  check((await page.locator('#shards-live').count()) === 1, 'the fragment replaced itself, not nested');
  await shot(page, 'shards', width);
}

async function phone(browser) {
  const width = 375;
  const ctx = await browser.newContext({ viewport: { width, height: 740 }, isMobile: true, hasTouch: true });
  const page = await ctx.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(m.text()); });
  await login(page);
  await shot(page, 'login', width);
  await consent(page);
  await shot(page, 'servers', width);
  await page.getByLabel('Server').selectOption({ label: GUILD });
  await go(page, page.getByRole('button', { name: 'Go' }), /\/g\/\d+\/settings/);
  await shot(page, 'settings', width);
  for (const [label, name] of [['Access', 'access'], ['Knowledge base', 'kb'], ['Tickets', 'tickets'], ['Usage and cost', 'usage'], ['FAQ', 'faq'], ['Moderation', 'cases']]) {
    await nav(page, label);
    await shot(page, name, width);
  }
  // On a phone the FAQ's answers are readable in place (stacked under their label).
  await nav(page, 'FAQ');
  check(await page.locator('td.rich[data-label="Answer"]').first().isVisible(), 'the answer shows on a phone');
  await nav(page, 'Moderation');
  await go(page, page.getByRole('link', { name: 'Open case 1' }), /\/p\/cases\/1$/);
  await shot(page, 'case', width);
  await nav(page, 'Knowledge base');
  await unfold(page, 'Add Notion pages');
  await shot(page, 'kb-add', width);
  await shards(page, width);
  // Keyboard: the skip link is the first stop and leads to the content.
  await page.reload();
  await page.keyboard.press('Tab');
  check(await page.evaluate(() => document.activeElement?.textContent?.trim() === 'Skip to content'), 'skip link first');
  await go(page, page.getByRole('button', { name: 'Log out' }), `${BASE}/`);
  await page.getByRole('link', { name: 'Log in with Discord' }).waitFor();
  check(problems.length === 0, `browser errors (CSP or script): ${problems.join(' | ')}`);
  await ctx.close();
}

// A fresh install: the next steps, and the playground on the local knowledge base.
async function setup(browser, width) {
  const ctx = await browser.newContext({ viewport: { width, height: 900 } });
  const page = await ctx.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(m.text()); });
  await page.goto(`${BASE}/`);
  const intro = await text(page);
  check(intro.includes('Create the Discord application'), 'the first step');
  check(intro.includes('Invite Beacon to your server'), 'the invite step');
  await page.getByLabel('Question').fill('How do I get a refund?');
  await go(page, page.getByRole('button', { name: 'Ask' }), /q=/);
  const answer = await text(page);
  check(answer.includes('Beacon would answer'), `the verdict: ${answer}`);
  check(answer.includes('refunds.md'), 'the source');
  await shot(page, 'setup', width);
  await page.getByLabel('Question').fill('What is the airspeed velocity of an unladen swallow?');
  await go(page, page.getByRole('button', { name: 'Ask' }), /swallow/);
  check((await text(page)).includes('Beacon would not answer'), 'an abstention');
  await shot(page, 'setup-abstain', width);
  check(problems.length === 0, `browser errors (CSP or script): ${problems.join(' | ')}`);
  await ctx.close();
}

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
try {
  if (dashboard) {
    await desktop(browser);
    await phone(browser);
  } else {
    await setup(browser, 1280);
    await setup(browser, 375);
  }
  console.log('DONE');
} finally {
  await browser.close();
  // Stop reading stdin, or node would wait for the test to close it.
  reader.close();
}
