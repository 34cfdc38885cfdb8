import { test as base, expect, type Browser, type Page } from '@playwright/test';
import { randomUUID } from 'node:crypto';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';

const root = path.resolve(__dirname, '..', '..');

/** The server binary built by `cargo leptos build`. */
export function binary(): string {
  return process.env.BATTLE_STATUS_BIN ?? path.join(root, 'target', 'debug', 'battle-status');
}

/** Grace period of the tests' servers: short, so that "left" comes soon. */
export const GRACE_MS = 2_000;

/** A battle-status server on a free port, built by `cargo leptos build`. */
export class Server {
  private constructor(
    private child: ChildProcess,
    readonly url: string,
  ) {}

  private env: Record<string, string> = {};

  /** Starts a server on a free port of 127.0.0.1, with extra environment. */
  static async start(env: Record<string, string> = {}): Promise<Server> {
    const child = Server.spawn('127.0.0.1:0', env);
    const server = new Server(child, await Server.listening(child));
    server.env = env;
    return server;
  }

  /** Stops the server (SIGTERM), then starts it again on the same port. */
  async restart(): Promise<void> {
    await this.stop();
    this.child = Server.spawn(new URL(this.url).host, this.env);
    await Server.listening(this.child);
  }

  private static spawn(addr: string, env: Record<string, string>): ChildProcess {
    return spawn(binary(), ['--addr', addr, '--grace-ms', String(GRACE_MS)], {
      env: {
        ...process.env,
        ...env,
        LEPTOS_SITE_ROOT: path.join(root, 'target', 'site'),
        LEPTOS_ENV: 'PROD',
        RUST_LOG: 'info',
        NO_COLOR: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  private static listening(child: ChildProcess): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      let output = '';
      const read = (chunk: Buffer) => {
        output += chunk.toString();
        const listening = output.match(/listening on (http:\/\/[0-9.]+:[0-9]+)/);
        if (listening) resolve(listening[1]);
      };
      child.stdout!.on('data', read);
      child.stderr!.on('data', read);
      child.on('error', reject);
      child.on('exit', (code) => reject(new Error(`the server exited (${code}) before listening:\n${output}`)));
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}

/** A free TCP port of 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** A private redis-server (installed by scripts/setup.sh --test) on a free port, without persistence. */
export class Redis {
  private constructor(
    private child: ChildProcess,
    readonly port: number,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}/`;
  }

  /**
   * Starts one on `port` (a free one by default), in an empty folder of its
   * own (a replica writes what it syncs there), with `extra` arguments, and
   * waits until it accepts connections.
   */
  static async start(port?: number, extra: string[] = []): Promise<Redis> {
    const chosen = port ?? (await freePort());
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'battle-redis-'));
    const args = ['--port', String(chosen), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
    const child = spawn('redis-server', [...args, ...extra], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await new Promise<void>((resolve, reject) => {
      let output = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) resolve();
      });
      child.on('error', reject);
      child.on('exit', (code) => reject(new Error(`redis-server exited (${code}):\n${output}`)));
    });
    return new Redis(child, chosen);
  }

  /** Kills it as a crash would (SIGKILL). */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGKILL');
    await exited;
  }

  /** Starts it again on the same port, empty. */
  async restart(): Promise<void> {
    await this.kill();
    this.child = (await Redis.start(this.port)).child;
  }
}

/** What `redis-cli -p <port> <args...>` prints, trimmed. */
function redisCli(port: number, args: string[]): string {
  try {
    return execFileSync('redis-cli', ['-p', String(port), ...args]).toString().trim();
  } catch {
    return '';
  }
}

/** A Redis master, a replica of it, and three Sentinels watching them as `mymaster`, on free ports. */
export class Sentinels {
  private constructor(
    readonly master: Redis,
    readonly replica: Redis,
    private sentinels: { port: number; child: ChildProcess }[],
  ) {}

  /** The Sentinels' addresses, for BATTLE_REDIS_SENTINEL. */
  get addresses(): string {
    return this.sentinels.map(({ port }) => `127.0.0.1:${port}`).join(',');
  }

  /** Starts them, and waits until the Sentinels know the replica. */
  static async start(): Promise<Sentinels> {
    const master = await Redis.start();
    const replica = await Redis.start(undefined, ['--replicaof', '127.0.0.1', String(master.port)]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'battle-sentinels-'));
    const sentinels = [];
    for (let n = 0; n < 3; n++) {
      const port = await freePort();
      const conf = path.join(dir, `sentinel-${n}.conf`);
      fs.writeFileSync(
        conf,
        `port ${port}\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 ${master.port} 2\n` +
          'sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 3000\n',
      );
      sentinels.push({ port, child: spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' }) });
    }
    const group = new Sentinels(master, replica, sentinels);
    await expect
      .poll(() => redisCli(sentinels[0].port, ['SENTINEL', 'replicas', 'mymaster']), { timeout: 30_000 })
      .toContain(String(replica.port));
    return group;
  }

  /** Makes the replica the master (SENTINEL FAILOVER) and waits until the Sentinels say so. */
  async failOver(): Promise<void> {
    const port = this.sentinels[0].port;
    // "NOGOODSLAVE" until the Sentinels have heard from the replica.
    await expect.poll(() => redisCli(port, ['SENTINEL', 'FAILOVER', 'mymaster']), { timeout: 30_000 }).toBe('OK');
    await expect
      .poll(() => redisCli(port, ['SENTINEL', 'get-master-addr-by-name', 'mymaster']), { timeout: 30_000 })
      .toContain(String(this.replica.port));
  }

  async stop(): Promise<void> {
    for (const { child } of this.sentinels) child.kill('SIGKILL');
    await this.replica.kill();
    await this.master.kill();
  }
}

/** Waits until the server's /readyz answers `status`. */
export async function readiness(server: Server, status: number): Promise<void> {
  await expect
    .poll(async () => (await fetch(`${server.url}/readyz`)).status, { timeout: 15_000 })
    .toBe(status);
}

/** Errors the page logged or threw, collected from its first moment. */
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  return errors;
}

/** Holds the page's wasm back until the returned function is called: until
 * then the page is its server-rendered HTML, not yet hydrated. */
export async function holdWasm(page: Page): Promise<() => void> {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  await page.route('**/*.wasm', async (route) => {
    await held;
    await route.continue();
  });
  return release;
}

/** Opens a new page in its own browser context (its own session storage). */
export async function newPlayer(browser: Browser): Promise<Page> {
  return (await browser.newContext()).newPage();
}

/** Opens a battle page and waits until it is hydrated and connected. */
export async function openBattle(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await expect(page.locator('#connectionState')).toHaveText('Live');
}

/** Two players, each in their own browser context, live in the battle at `url`. */
export async function openPair(browser: Browser, url: string): Promise<[Page, Page]> {
  const alice = await newPlayer(browser);
  const bob = await newPlayer(browser);
  await openBattle(alice, url);
  await openBattle(bob, url);
  return [alice, bob];
}

/** Two instances sharing a private Redis, with a player's page on each. */
export type Fleet = { redis: Redis; instances: Server[]; room: string; alice: Page; bob: Page };

/**
 * Two instances of the server sharing rooms through a private Redis, with
 * extra environment `env`; alice's page is served by (and connected to) the
 * first, bob's by the second, in one battle. Stops everything afterwards.
 */
export async function withFleet(browser: Browser, env: Record<string, string>, run: (fleet: Fleet) => Promise<void>) {
  const redis = await Redis.start();
  const instances: Server[] = [];
  try {
    for (let i = 0; i < 2; i++) instances.push(await Server.start({ ...env, BATTLE_REDIS_URL: redis.url }));
    await Promise.all(instances.map((instance) => readiness(instance, 200)));
    const room = randomUUID();
    const alice = await newPlayer(browser);
    const bob = await newPlayer(browser);
    await openBattle(alice, `${instances[0].url}/battle/${room}`);
    await openBattle(bob, `${instances[1].url}/battle/${room}`);
    await expect(alice.locator('#opponentStatus')).toHaveText('Thinking');
    await expect(bob.locator('#opponentStatus')).toHaveText('Thinking');
    await run({ redis, instances, room, alice, bob });
  } finally {
    await Promise.all(instances.map((instance) => instance.stop()));
    await redis.kill();
  }
}

export const test = base.extend<{}, { server: Server }>({
  server: [
    async ({}, use) => {
      const server = await Server.start();
      await use(server);
      await server.stop();
    },
    { scope: 'worker' },
  ],
});

export { expect };
