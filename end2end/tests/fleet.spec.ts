import { randomUUID } from 'node:crypto';
import { expect, newPlayer, openBattle, readiness, Sentinels, Server, test, withFleet } from './fixtures';

test('players on two instances see each other, through a Redis restart', async ({ browser }) => {
  await withFleet(browser, {}, async ({ redis, instances, alice, bob }) => {
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
  });
});

test("the judge's verdict, posted to one instance, reaches the pages on both", async ({ browser }) => {
  const secret = 'judge-secret-0123456789';
  await withFleet(browser, { BATTLE_PUBLISH_SECRET: secret }, async ({ instances, room, alice, bob }) => {
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
  });
});

test('pages on two instances keep playing through a Sentinel failover', async ({ browser }) => {
  const group = await Sentinels.start();
  const env = { BATTLE_REDIS_SENTINEL: group.addresses };
  const instances = [await Server.start(env), await Server.start(env)];
  try {
    await Promise.all(instances.map((instance) => readiness(instance, 200)));
    const room = randomUUID();
    const alice = await newPlayer(browser);
    const bob = await newPlayer(browser);
    await openBattle(alice, `${instances[0].url}/battle/${room}`);
    await openBattle(bob, `${instances[1].url}/battle/${room}`);
    await alice.getByRole('button', { name: 'Run' }).click();
    await expect(bob.locator('#opponentStatus')).toHaveText('Running code');

    await group.failOver();
    // Once both instances follow the new master, frames cross again.
    await expect
      .poll(
        async () => {
          await bob.getByRole('button', { name: 'Submit' }).click();
          return alice.locator('#opponentStatus').textContent();
        },
        { timeout: 20_000 },
      )
      .toBe('Submitted code');
    await Promise.all(instances.map((instance) => readiness(instance, 200)));
    await alice.getByRole('button', { name: 'Submit' }).click();
    await expect(bob.locator('#opponentStatus')).toHaveText('Submitted code');
    await expect(alice.locator('#connectionState')).toHaveText('Live');
  } finally {
    await Promise.all(instances.map((instance) => instance.stop()));
    await group.stop();
  }
});
