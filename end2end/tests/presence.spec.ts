import { randomUUID } from 'node:crypto';
import { collectErrors, expect, GRACE_MS, newPlayer, openBattle, openPair, Server, test } from './fixtures';

const battleUrl = (base: string) => `${base}/battle/${randomUUID()}`;

test('a player alone waits; the opponent arriving and leaving shows', async ({ browser, server }) => {
  const url = battleUrl(server.url);
  const alice = await newPlayer(browser);
  await openBattle(alice, url);
  const status = alice.locator('#opponentStatus');
  await expect(status).toHaveText('Waiting for an opponent');

  const bob = await newPlayer(browser);
  await openBattle(bob, url);
  await expect(status).toHaveText('Thinking');

  await bob.close();
  await expect(status).toHaveText('Opponent reconnecting...');
  await expect(status).toHaveText('Opponent left', { timeout: GRACE_MS + 5_000 });
});

test('a late joiner sees the opponent\'s last action at once', async ({ browser, server }) => {
  const url = battleUrl(server.url);
  const alice = await newPlayer(browser);
  await openBattle(alice, url);
  await alice.getByRole('button', { name: 'Submit' }).click();
  await expect(alice.locator('#ownStatus'), 'the room has it').toHaveText('Last sent: Submitted code');
  const bob = await newPlayer(browser);
  const errors = collectErrors(bob);
  await openBattle(bob, url);
  await expect(bob.locator('#opponentStatus')).toHaveText('Submitted code');
  expect(errors).toEqual([]);
});

test('a reload within the grace period is the same player, not a new one', async ({ browser, server }) => {
  const url = battleUrl(server.url);
  const [alice, bob] = await openPair(browser, url);
  await bob.getByRole('button', { name: 'Run' }).click();
  await expect(alice.locator('#opponentStatus')).toHaveText('Running code');

  await bob.reload();
  await expect(bob.locator('#connectionState')).toHaveText('Live');
  await expect(alice.locator('#opponentStatus')).toHaveText('Running code');
  await expect(bob.locator('#opponentStatus'), 'the seat was taken back, not a third one').toHaveText('Thinking');
});

test('a third player is turned away and offered to watch', async ({ browser, server }) => {
  const url = battleUrl(server.url);
  const [alice, bob] = await openPair(browser, url);

  const carol = await newPlayer(browser);
  await carol.goto(url);
  await expect(carol.locator('#connectionState')).toHaveText('Battle full');
  await expect(carol.locator('#turnedAway')).toContainText('This battle already has two players.');
  await carol.getByRole('link', { name: 'Watch instead' }).click();
  await expect(carol).toHaveURL(/role=spectator/);
  await expect(carol.locator('#connectionState')).toHaveText('Live');
  await expect(carol.locator('#player1Status')).toHaveText('Thinking');
  await expect(carol.locator('#player2Status')).toHaveText('Thinking');
});

test('a spectator sees both players side by side', async ({ browser, server }) => {
  const url = battleUrl(server.url);
  const alice = await newPlayer(browser);
  const bob = await newPlayer(browser);
  const watcher = await newPlayer(browser);
  await openBattle(alice, url);
  await openBattle(watcher, `${url}?role=spectator`);
  await expect(watcher.locator('#player2Status')).toHaveText('Waiting for a player');
  await openBattle(bob, url);

  await bob.getByRole('button', { name: 'Submit' }).click();
  await expect(watcher.locator('#player2Status')).toHaveText('Submitted code');
  await alice.locator('#editor').pressSequentially('let x = 1;');
  await expect(watcher.locator('#player1Status')).toHaveText('Typing...');
  await expect(bob.locator('#opponentStatus'), 'the spectator is nobody\'s opponent').toHaveText('Typing...');
});

test('after a server restart both pages reconnect by themselves and go on', async ({ browser }) => {
  const server = await Server.start();
  try {
    const url = battleUrl(server.url);
    const [alice, bob] = await openPair(browser, url);

    await server.stop();
    await expect(alice.locator('#connectionState')).toHaveText('Reconnecting...');
    await expect(bob.locator('#connectionState')).toHaveText('Reconnecting...');
    await server.restart();

    // Reconnection waits at most 20 s; the first attempts come much sooner.
    await expect(alice.locator('#connectionState')).toHaveText('Live', { timeout: 25_000 });
    await expect(bob.locator('#connectionState')).toHaveText('Live', { timeout: 25_000 });
    await alice.getByRole('button', { name: 'Run' }).click();
    await expect(bob.locator('#opponentStatus')).toHaveText('Running code');
  } finally {
    await server.stop();
  }
});
