import { randomUUID } from 'node:crypto';
import { collectErrors, expect, holdWasm, openBattle, openPair, test } from './fixtures';

const battleUrl = (base: string) => `${base}/battle/${randomUUID()}`;

test('the lobby starts a battle whose page hydrates without errors', async ({ page, server }) => {
  const errors = collectErrors(page);
  await page.goto(server.url);
  await page.getByRole('link', { name: 'Start a battle' }).click();
  await expect(page).toHaveURL(/\/battle\/[0-9a-f-]{36}$/);
  await expect(page.locator('#connectionState')).toHaveText('Live');
  const id = page.url().split('/battle/')[1];
  await expect(page.locator('#battleId')).toHaveValue(id);
  await expect(page.locator('#opponentStatus')).toHaveText('Waiting for an opponent');
  expect(errors).toEqual([]);
});

test('the lobby joins a battle from a pasted link and explains bad input', async ({ page, server }) => {
  const errors = collectErrors(page);
  await page.goto(server.url);
  const field = page.getByLabel('Join a battle');
  await field.fill('not a battle!');
  await page.getByRole('button', { name: 'Join' }).click();
  await expect(page.locator('#joinError')).toContainText('not a battle id or a battle link');

  await field.fill(`${server.url}/battle/pasted-link-42`);
  await page.getByRole('button', { name: 'Join' }).click();
  await expect(page).toHaveURL(/\/battle\/pasted-link-42$/);
  await expect(page.locator('#connectionState')).toHaveText('Live');
  expect(errors).toEqual([]);
});

test('what a player types in the lobby before the page hydrates is kept, and joins with that name', async ({
  page,
  server,
}) => {
  const errors = collectErrors(page);
  const release = await holdWasm(page);
  await page.goto(server.url, { waitUntil: 'domcontentloaded' });
  const room = randomUUID();
  await page.getByLabel('Your name').fill('Ada');
  await page.getByLabel('Join a battle').fill(room);
  release();
  await expect(page.locator('main')).toHaveAttribute('data-hydrated', '');
  await expect(page.getByLabel('Your name')).toHaveValue('Ada');
  await expect(page.getByLabel('Join a battle')).toHaveValue(room);
  await page.getByRole('button', { name: 'Join' }).click();
  await expect(page).toHaveURL(new RegExp(`/battle/${room}$`));
  await expect(page.locator('#connectionState')).toHaveText('Live');
  await expect(page.locator('#nameInput')).toHaveValue('Ada');
  expect(errors).toEqual([]);
});

test('typing shows "Typing..." to the opponent, then "Thinking" after the timeout', async ({ browser, server }) => {
  const url = battleUrl(server.url);
  const [alice, bob] = await openPair(browser, url);

  await alice.locator('#editor').pressSequentially('fn main() {}');
  await expect(bob.locator('#opponentStatus')).toHaveText('Typing...');
  await expect(alice.locator('#opponentStatus'), 'a page ignores its own frames').toHaveText('Thinking');
  await expect(bob.locator('#opponentStatus')).toHaveText('Thinking', { timeout: 6_000 });
});

test('Run and Submit show their labels to the opponent', async ({ browser, server }) => {
  const url = battleUrl(server.url);
  const [alice, bob] = await openPair(browser, url);

  await alice.getByRole('button', { name: 'Run' }).click();
  await expect(bob.locator('#opponentStatus')).toHaveText('Running code');
  await alice.getByRole('button', { name: 'Submit' }).click();
  await expect(bob.locator('#opponentStatus')).toHaveText('Submitted code');
  await bob.getByRole('button', { name: 'Run' }).click();
  await expect(alice.locator('#opponentStatus')).toHaveText('Running code');
  await expect(bob.locator('#opponentStatus')).toHaveText('Submitted code');
});

test('Tab indents in the editor instead of leaving it', async ({ page, server }) => {
  await openBattle(page, battleUrl(server.url));
  const editor = page.locator('#editor');
  await editor.click();
  await page.keyboard.type('if x {');
  await page.keyboard.press('Enter');
  await page.keyboard.press('Tab');
  await page.keyboard.type('y');
  await expect(editor).toHaveValue('if x {\n    y');
  await expect(editor).toBeFocused();
});

test('two players in one battle, side by side', async ({ browser, server }) => {
  const url = battleUrl(server.url);
  // Two pages, not two frames of one: the battle page refuses to be framed.
  const open = async () => (await browser.newContext({ viewport: { width: 796, height: 760 } })).newPage();
  const alice = await open();
  const bob = await open();
  await openBattle(alice, `${url}?name=Ada`);
  await openBattle(bob, `${url}?name=Grace`);

  await expect(alice.locator('#opponentName')).toHaveText('Grace');
  await bob.getByRole('button', { name: 'Submit' }).click();
  await expect(alice.locator('#opponentStatus')).toHaveText('Submitted code');
  await alice.locator('#editor').pressSequentially('fn solve(n: u64) -> u64 {\n');
  await expect(bob.locator('#opponentStatus')).toHaveText('Typing...');
  if (process.env.SCREENSHOT) {
    const [left, right] = await Promise.all([alice, bob].map((page) => page.screenshot()));
    const sheet = await browser.newPage({ viewport: { width: 1600, height: 760 } });
    await sheet.setContent(`
      <style>body{margin:0;display:flex;gap:8px;background:#888}img{width:796px;height:760px}</style>
      <img src="data:image/png;base64,${left.toString('base64')}">
      <img src="data:image/png;base64,${right.toString('base64')}">`);
    await sheet.screenshot({ path: process.env.SCREENSHOT });
  }
});
