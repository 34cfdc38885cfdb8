import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { binary, expect, newPlayer, openBattle, Server, test } from './fixtures';

const SECRET = 'end-to-end secret, long enough';

/** A token minted by the binary's own `token` command. */
function mintToken(room: string, player: string, ttlSecs = 3600): string {
  return execFileSync(binary(), ['token', '--room', room, '--player', player, '--ttl-secs', String(ttlSecs)], {
    env: { ...process.env, BATTLE_TOKEN_SECRET: SECRET },
  })
    .toString()
    .trim();
}

test('with join tokens on, the page joins with the token from its URL, and not without', async ({ browser }) => {
  const server = await Server.start({ BATTLE_TOKEN_SECRET: SECRET });
  try {
    const room = randomUUID();
    const alice = await newPlayer(browser);
    const bob = await newPlayer(browser);
    await openBattle(alice, `${server.url}/battle/${room}?token=${mintToken(room, 'host-app-alice-0001')}`);
    await openBattle(bob, `${server.url}/battle/${room}?token=${mintToken(room, 'host-app-bob-00002')}`);
    await bob.getByRole('button', { name: 'Submit' }).click();
    await expect(alice.locator('#opponentStatus')).toHaveText('Submitted code');

    const intruder = await newPlayer(browser);
    await intruder.goto(`${server.url}/battle/${room}`);
    await expect(intruder.locator('#connectionState')).toHaveText('Reconnecting...');
    await expect(alice.locator('#opponentStatus'), 'no third player got in').toHaveText('Submitted code');
  } finally {
    await server.stop();
  }
});

test('a page opened with an expired link says so instead of reconnecting forever', async ({ browser }) => {
  const server = await Server.start({ BATTLE_TOKEN_SECRET: SECRET });
  try {
    const room = randomUUID();
    const page = await newPlayer(browser);
    await page.goto(`${server.url}/battle/${room}?token=${mintToken(room, 'host-app-late-00001', 0)}`);
    await expect(page.locator('#connectionState')).toHaveText('Link not valid');
    await expect(page.locator('#turnedAway')).toContainText('This battle link has expired or is not valid');
  } finally {
    await server.stop();
  }
});
