import { expect, readiness, test, withFleet } from './fixtures';

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
