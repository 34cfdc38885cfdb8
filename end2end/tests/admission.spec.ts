import { randomUUID } from 'node:crypto';
import { expect, newPlayer, openBattle, Server, test } from './fixtures';

test('a page refused as busy says so calmly and joins by itself once let in', async ({ browser }) => {
  // One socket per address: the second page is refused (429) until the first leaves.
  const server = await Server.start({ BATTLE_MAX_CONNECTIONS_PER_IP: '1' });
  try {
    const url = `${server.url}/battle/${randomUUID()}`;
    const alice = await newPlayer(browser);
    await openBattle(alice, url);
    const bob = await newPlayer(browser);
    await bob.goto(url);
    const state = bob.locator('#connectionState');
    await expect(state).toHaveText('Busy, joining in a few seconds...');
    await expect(state).toHaveAttribute('data-state', 'busy');
    await expect(bob.locator('#turnedAway'), 'busy is no error').toHaveCount(0);

    await alice.close();
    await expect(state).toHaveText('Live', { timeout: 15_000 });
  } finally {
    await server.stop();
  }
});
