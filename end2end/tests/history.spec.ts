import { randomUUID } from 'node:crypto';
import type { Browser, Page } from '@playwright/test';
import { expect, newPlayer, openBattle, openPair, test, withFleet } from './fixtures';

test('a spectator opened mid-battle sees the battle so far, then live', async ({ browser, server }) => {
  const url = `${server.url}/battle/${randomUUID()}`;
  const [alice, bob] = await openPair(browser, url);
  await bob.getByRole('button', { name: 'Submit' }).click();
  await expect(alice.locator('#opponentStatus')).toHaveText('Submitted code');
  await alice.getByRole('button', { name: 'Run' }).click();
  await expect(bob.locator('#opponentStatus')).toHaveText('Running code');

  const watcher = await newPlayer(browser);
  await openBattle(watcher, `${url}?role=spectator`);
  const timeline = watcher.locator('#timeline');
  await expect(timeline.locator('li')).toHaveText([
    /^Player 1 · joined · 0:0\d$/,
    /^Player 2 · joined · /,
    /^Player 2 · Submitted code · /,
    /^Player 1 · Running code · /,
  ]);
  await bob.getByRole('button', { name: 'Run' }).click();
  await expect(timeline.locator('li').last()).toHaveText(/^Player 2 · Running code · /);
  await expect(watcher.locator('#announcer'), 'moves are announced once, politely').toHaveText('Player 2: Running code');
  await expect(bob.locator('#opponentMoves li').first()).toHaveText(/^Running code · /);
});

const secret = 'judge-secret-0123456789';

/**
 * Alice (on the first of two instances sharing Redis) and bob (on the
 * second) in one battle; bob submits; alice's instance stops, the judge
 * posts `verdicts` about bob meanwhile, and the instance comes back.
 */
async function missWhileRestarting(
  browser: Browser,
  extra: Record<string, string>,
  verdicts: string[],
  check: (alice: Page) => Promise<void>,
) {
  const env = { ...extra, BATTLE_PUBLISH_SECRET: secret, BATTLE_RECONNECT_WINDOW_MS: '500' };
  await withFleet(browser, env, async ({ instances, room, alice, bob }) => {
    await bob.getByRole('button', { name: 'Submit' }).click();
    await expect(alice.locator('#opponentStatus')).toHaveText('Submitted code');
    const bobKey = await bob.evaluate((name) => sessionStorage.getItem(name), `battle-status:${room}:player`);
    await instances[0].stop();
    await expect(alice.locator('#connectionState')).toHaveText('Reconnecting...');
    for (const action of verdicts) {
      const response = await fetch(`${instances[1].url}/api/battles/${room}/events`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${secret}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ player: bobKey, action }),
      });
      expect(response.status).toBe(202);
    }
    await instances[0].restart();
    await expect(alice.locator('#connectionState')).toHaveText('Live', { timeout: 15_000 });
    await check(alice);
  });
}

test('a page whose server restarted shows both verdicts it missed meanwhile', async ({ browser }) => {
  await missWhileRestarting(browser, {}, ['FAILED_TC3', 'TLE'], async (alice) => {
    await expect(alice.locator('#opponentStatus')).toHaveText('TLE');
    await expect(alice.locator('#opponentMoves li')).toHaveText([/^TLE · /, /^Failed on test 3 · /, /^Submitted code · /]);
    await expect(alice.locator('#historyGap')).toHaveCount(0);
  });
});

test('a page that missed more than the room keeps says so instead of pretending', async ({ browser }) => {
  await missWhileRestarting(browser, { BATTLE_HISTORY_LEN: '2' }, ['FAILED_TC1', 'FAILED_TC2', 'WA', 'TLE'], async (alice) => {
    await expect(alice.locator('#opponentStatus'), 'the snapshot is the truth').toHaveText('TLE');
    await expect(alice.locator('#historyGap')).toHaveText('Some earlier moves were not recovered.');
  });
});
