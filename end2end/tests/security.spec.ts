import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { Page } from '@playwright/test';
import { binary, collectErrors, expect, newPlayer, openBattle, Server, test } from './fixtures';

const SECRET = 'end-to-end secret, long enough';

/** Records every Content-Security-Policy violation of the page from its first moment. */
async function watchViolations(page: Page): Promise<() => Promise<string[]>> {
  await page.addInitScript(() => {
    const seen: string[] = [];
    (window as unknown as { __violations: string[] }).__violations = seen;
    document.addEventListener('securitypolicyviolation', (event) => {
      seen.push(`${event.violatedDirective} ${event.blockedURI}`);
    });
  });
  return () => page.evaluate(() => (window as unknown as { __violations: string[] }).__violations);
}

test('under the strict CSP the lobby and a battle hydrate, connect and show typing, with no violation', async ({
  browser,
  server,
}) => {
  const alice = await newPlayer(browser);
  const bob = await newPlayer(browser);
  const violations = [await watchViolations(alice), await watchViolations(bob)];
  const errors = [collectErrors(alice), collectErrors(bob)];
  const csp = (await alice.goto(`${server.url}/`))!.headers()['content-security-policy'];
  expect(csp).toContain("frame-ancestors 'none'");
  const room = randomUUID();
  await alice.getByLabel('Join a battle').fill(room);
  await alice.getByRole('button', { name: 'Join' }).click();
  await expect(alice).toHaveURL(new RegExp(`/battle/${room}$`));
  await expect(alice.locator('#connectionState')).toHaveText('Live');
  await openBattle(bob, `${server.url}/battle/${room}`);
  await bob.locator('#editor').pressSequentially('fn main() {}');
  await expect(alice.locator('#opponentStatus')).toHaveText('Typing...');
  for (const page of [alice, bob]) {
    expect(await violations[page === alice ? 0 : 1]()).toEqual([]);
  }
  for (const list of errors) {
    expect(list.filter((error) => /Content.Security.Policy|CSP/i.test(error))).toEqual([]);
    expect(list).toEqual([]);
  }
});

test('a join token leaves the address bar at once and the page still reconnects after a restart', async ({ browser }) => {
  const server = await Server.start({ BATTLE_TOKEN_SECRET: SECRET });
  const mint = (room: string, player: string) =>
    execFileSync(binary(), ['token', '--room', room, '--player', player, '--ttl-secs', '3600'], {
      env: { ...process.env, BATTLE_TOKEN_SECRET: SECRET },
    })
      .toString()
      .trim();
  try {
    const room = randomUUID();
    const alice = await newPlayer(browser);
    const bob = await newPlayer(browser);
    const token = mint(room, 'host-app-alice-0001');
    await openBattle(alice, `${server.url}/battle/${room}?token=${token}`);
    expect(alice.url()).toBe(`${server.url}/battle/${room}`);
    expect(await alice.evaluate(() => location.href)).not.toContain(token);
    await openBattle(bob, `${server.url}/battle/${room}?token=${mint(room, 'host-app-bob-00002')}`);

    await server.restart();
    await expect(alice.locator('#connectionState')).toHaveText('Live', { timeout: 15_000 });
    await expect(bob.locator('#connectionState')).toHaveText('Live', { timeout: 15_000 });
    await bob.getByRole('button', { name: 'Submit' }).click();
    await expect(alice.locator('#opponentStatus')).toHaveText('Submitted code');

    await alice.reload();
    await expect(alice.locator('#connectionState'), 'the tab kept its token').toHaveText('Live');
    expect(alice.url()).not.toContain('token');
  } finally {
    await server.stop();
  }
});
