import { randomUUID } from 'node:crypto';
import { expect, newPlayer, openBattle, readiness, Redis, Server, test } from './fixtures';

// Two instances of the server sharing rooms through a private Redis; each
// player's page is served by (and connected to) a different instance.
test('players on two instances see each other, through a Redis restart', async ({ browser }) => {
  const redis = await Redis.start();
  const instances = [
    await Server.start({ BATTLE_REDIS_URL: redis.url }),
    await Server.start({ BATTLE_REDIS_URL: redis.url }),
  ];
  try {
    await Promise.all(instances.map((instance) => readiness(instance, 200)));
    const room = randomUUID();
    const alice = await newPlayer(browser);
    const bob = await newPlayer(browser);
    await openBattle(alice, `${instances[0].url}/battle/${room}`);
    await openBattle(bob, `${instances[1].url}/battle/${room}`);
    await expect(alice.locator('#opponentStatus')).toHaveText('Thinking');

    await bob.locator('#editor').pressSequentially('fn main() {}');
    await expect(alice.locator('#opponentStatus')).toHaveText('Typing...');
    await alice.getByRole('button', { name: 'Run' }).click();
    await expect(bob.locator('#opponentStatus')).toHaveText('Running code');

    await redis.kill();
    await Promise.all(instances.map((instance) => readiness(instance, 503)));
    await alice.getByRole('button', { name: 'Submit' }).click();
    await expect(alice.locator('#connectionState'), 'the sockets stay up').toHaveText('Live');

    await redis.restart();
    await Promise.all(instances.map((instance) => readiness(instance, 200)));
    await expect(bob.locator('#opponentStatus'), "what happened during the outage").toHaveText('Submitted code');
    await bob.getByRole('button', { name: 'Submit' }).click();
    await expect(alice.locator('#opponentStatus')).toHaveText('Submitted code');
  } finally {
    await Promise.all(instances.map((instance) => instance.stop()));
    await redis.kill();
  }
});

test("the judge's verdict, posted to one instance, reaches the pages on both", async ({ browser }) => {
  const secret = 'judge-secret-0123456789';
  const redis = await Redis.start();
  const env = { BATTLE_REDIS_URL: redis.url, BATTLE_PUBLISH_SECRET: secret };
  const instances = [await Server.start(env), await Server.start(env)];
  try {
    await Promise.all(instances.map((instance) => readiness(instance, 200)));
    const room = randomUUID();
    const alice = await newPlayer(browser);
    const bob = await newPlayer(browser);
    await openBattle(alice, `${instances[0].url}/battle/${room}`);
    await openBattle(bob, `${instances[1].url}/battle/${room}`);
    await expect(bob.locator('#opponentStatus')).toHaveText('Thinking');

    // The judge names the player by the private key the page presents.
    const key = await alice.evaluate((name) => sessionStorage.getItem(name), `battle-status:${room}:player`);
    const response = await fetch(`${instances[1].url}/api/battles/${room}/events`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${secret}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ player: key, action: 'FAILED_TC7' }),
    });
    expect(response.status).toBe(202);
    await expect(bob.locator('#opponentStatus')).toHaveText('Failed on test 7');
    await expect(alice.locator('#ownStatus')).toHaveText('Last sent: Failed on test 7');
  } finally {
    await Promise.all(instances.map((instance) => instance.stop()));
    await redis.kill();
  }
});
