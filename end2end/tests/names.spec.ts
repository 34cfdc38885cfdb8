import { randomUUID } from 'node:crypto';
import AxeBuilder from '@axe-core/playwright';
import { type Page } from '@playwright/test';
import { collectErrors, expect, holdWasm, newPlayer, openBattle, Server, test } from './fixtures';

const battleUrl = (base: string) => `${base}/battle/${randomUUID()}`;
const named = (url: string, name: string) => `${url}?name=${encodeURIComponent(name)}`;

/** Makes the page's tab hidden (or visible again), as switching tabs does. */
async function setHidden(page: Page, hidden: boolean) {
  await page.evaluate((hidden) => {
    Object.defineProperty(document, 'hidden', { value: hidden, configurable: true });
    Object.defineProperty(document, 'visibilityState', { value: hidden ? 'hidden' : 'visible', configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}

test('two players with names see each other by name, and a new name reaches the room at once', async ({ browser, server }) => {
  const url = battleUrl(server.url);
  const alice = await newPlayer(browser);
  const bob = await newPlayer(browser);
  await openBattle(alice, named(url, 'Ada'));
  await openBattle(bob, named(url, 'Grace'));
  await expect(alice.locator('#opponentName')).toHaveText('Grace');
  await expect(bob.locator('#opponentName')).toHaveText('Ada');
  await expect(alice.locator('#nameInput')).toHaveValue('Ada');

  await alice.locator('#nameInput').fill('Ada Lovelace');
  await alice.locator('#nameInput').press('Enter');
  await expect(bob.locator('#opponentName')).toHaveText('Ada Lovelace');

  await alice.reload();
  await expect(alice.locator('#connectionState')).toHaveText('Live');
  await expect(alice.locator('#nameInput'), 'the name is remembered').toHaveValue('Ada Lovelace');

  const watcher = await newPlayer(browser);
  await openBattle(watcher, `${url}?role=spectator`);
  await expect(watcher.locator('#player1Name')).toHaveText('Ada Lovelace');
  await expect(watcher.locator('#player2Name')).toHaveText('Grace');
});

test('a name typed on the battle page before it hydrates is kept and reaches the opponent', async ({ browser, server }) => {
  const url = battleUrl(server.url);
  const alice = await newPlayer(browser);
  const errors = collectErrors(alice);
  const release = await holdWasm(alice);
  await alice.goto(named(url, 'Ada'), { waitUntil: 'domcontentloaded' });
  await alice.locator('#nameInput').fill('Ada Lovelace');
  release();
  await expect(alice.locator('main')).toHaveAttribute('data-hydrated', '');
  await expect(alice.locator('#connectionState')).toHaveText('Live');
  await expect(alice.locator('#nameInput')).toHaveValue('Ada Lovelace');

  const bob = await newPlayer(browser);
  await openBattle(bob, url);
  await expect(bob.locator('#opponentName')).toHaveText('Ada Lovelace');
  expect(errors).toEqual([]);
});

test('a name with markup shows as text, and a bad name is explained, not sent', async ({ browser, server }) => {
  const url = battleUrl(server.url);
  const markup = '<img src=x onerror=alert(1)><b>';
  const alice = await newPlayer(browser);
  const bob = await newPlayer(browser);
  const errors = collectErrors(bob);
  await openBattle(alice, named(url, markup));
  await openBattle(bob, url);
  await expect(bob.locator('#opponentName')).toHaveText(markup);
  await expect(bob.locator('#opponentName img, #opponentName b')).toHaveCount(0);
  await bob.locator('#nameInput').fill('x'.repeat(33));
  await bob.locator('#nameInput').press('Enter');
  await expect(bob.locator('#nameError')).toContainText('at most 32 characters');
  await expect(alice.locator('#opponentName')).toHaveText('Opponent');
  expect(errors).toEqual([]);
});

test('Esc then Tab leaves the editor, Shift+Tab leaves backwards, and the shortcuts run and submit', async ({ browser, server }) => {
  const url = battleUrl(server.url);
  const alice = await newPlayer(browser);
  const bob = await newPlayer(browser);
  await openBattle(alice, url);
  await openBattle(bob, url);
  const editor = alice.locator('#editor');
  await editor.click();
  await expect(alice.locator('#editorHint')).toBeVisible();
  await alice.keyboard.press('Tab');
  await expect(editor).toBeFocused();
  await expect(editor).toHaveValue('    ');
  await alice.keyboard.press('Escape');
  await alice.keyboard.press('Tab');
  await expect(alice.locator('#runButton')).toBeFocused();
  await editor.focus();
  await alice.keyboard.press('Shift+Tab');
  await expect(alice.locator('#nameInput')).toBeFocused();

  await editor.focus();
  await alice.keyboard.press('Control+Enter');
  await expect(bob.locator('#opponentStatus')).toHaveText('Running code');
  await alice.keyboard.press('Control+Shift+Enter');
  await expect(bob.locator('#opponentStatus')).toHaveText('Submitted code');
  await expect(alice.locator('#runButton')).toHaveAttribute('aria-keyshortcuts', /Control\+Enter/);
  await expect(alice.locator('#submitButton')).toHaveAttribute('aria-keyshortcuts', /Control\+Shift\+Enter/);
});

test('a hidden tab shows as Away to the opponent, and its own title counts what it missed', async ({ browser, server }) => {
  const url = battleUrl(server.url);
  const alice = await newPlayer(browser);
  const bob = await newPlayer(browser);
  await openBattle(alice, named(url, 'Ada'));
  await openBattle(bob, named(url, 'Grace'));
  await bob.getByRole('button', { name: 'Run' }).click();
  await expect(alice.locator('#opponentStatus')).toHaveText('Running code');
  const title = await alice.title();

  await setHidden(alice, true);
  await expect(bob.locator('#opponentAway')).toContainText('Away for', { timeout: 6_000 });
  await expect(bob.locator('#announcer')).toHaveText('Ada is away');
  await bob.getByRole('button', { name: 'Submit' }).click();
  await expect(alice).toHaveTitle('(1) Grace submitted · battle-status');
  await alice.getByRole('button', { name: 'Run' }).click();
  await expect(bob.locator('#opponentStatus'), 'away is presence, not an action').toHaveText('Running code');

  await setHidden(alice, false);
  await expect(alice).toHaveTitle(title);
  await expect(bob.locator('#opponentAway')).toBeHidden();
  await expect(bob.locator('#announcer')).toHaveText('Ada is back');
});

test("a player who opted in is notified of the opponent's verdict while the tab is hidden", async ({ browser, server }) => {
  const secret = 'judge-secret-0123456789';
  const judged = await Server.start({ BATTLE_PUBLISH_SECRET: secret });
  try {
    const room = randomUUID();
    const url = `${judged.url}/battle/${room}`;
    const alice = await newPlayer(browser);
    // A stand-in for the browser's notifications, already allowed.
    await alice.addInitScript(() => {
      const shown: string[] = [];
      (window as any).shownNotifications = shown;
      (window as any).Notification = class {
        static permission = 'granted';
        static requestPermission() { return Promise.resolve('granted'); }
        constructor(_title: string, options: { body: string }) { shown.push(options.body); }
      };
    });
    const bob = await newPlayer(browser);
    await openBattle(alice, url);
    await openBattle(bob, named(url, 'Grace'));
    await expect(alice.locator('#notifyButton')).toHaveText('Verdicts notify you');
    await setHidden(alice, true);
    const key = await bob.evaluate((name) => sessionStorage.getItem(name), `battle-status:${room}:player`);
    const response = await fetch(`${judged.url}/api/battles/${room}/events`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${secret}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ player: key, action: 'AC' }),
    });
    expect(response.status).toBe(202);
    await expect.poll(() => alice.evaluate(() => (window as any).shownNotifications)).toEqual(['Grace: Accepted']);
    await expect(alice).toHaveTitle('(1) Grace: Accepted · battle-status');
  } finally {
    await judged.stop();
  }
});

/** The serious and critical violations axe-core finds on `page`. */
async function graveViolations(page: Page): Promise<string[]> {
  const results = await new AxeBuilder({ page }).analyze();
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

test('the lobby, a player and a spectator pass axe-core with no serious or critical violation', async ({ browser, server }) => {
  const page = await newPlayer(browser);
  await page.goto(server.url);
  await expect(page.locator('#startBattle')).toBeVisible();
  expect(await graveViolations(page), 'lobby').toEqual([]);

  const url = battleUrl(server.url);
  await openBattle(page, named(url, 'Ada'));
  expect(await graveViolations(page), 'player').toEqual([]);

  const watcher = await newPlayer(browser);
  await openBattle(watcher, `${url}?role=spectator`);
  await expect(watcher.locator('#player1Name')).toHaveText('Ada');
  expect(await graveViolations(watcher), 'spectator').toEqual([]);
});
