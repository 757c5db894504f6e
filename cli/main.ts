/**
 * `cose-flow COMMAND [options]`: the command-line entry (bin/cose-flow.js calls `main`).
 * Subcommands are one table; add an entry to add a command. Each command's module is imported
 * only when that command runs (or prints its help), so `cose-flow --help` and the light commands
 * never load the database, broker or HTTP stacks the others need.
 */
import { readFileSync } from 'node:fs';
import { type CliIo, type Command, describeFailure, processIo, UsageError } from './command.js';

export interface CommandEntry {
  /** One line for `cose-flow --help`. */
  summary: string;
  load(): Promise<Command>;
}

export const commands: Record<string, CommandEntry> = {
  ca: {
    summary: 'the certificate authority: init, issue, revoke, list, allow, batch, serve (enrollment)',
    load: async () => (await import('./ca.js')).caCommand,
  },
  cloud: {
    summary:
      "cloud keygen | rotate | run | reset-kid: the cloud key and its fleet-wide rotation, the cloud service, a device's kid floor reset",
    load: async () => (await import('./cloud.js')).cloudCommand,
  },
  demo: {
    summary: 'the whole system live: broker, CA, cloud service + dashboard, simulated devices (npm start)',
    load: async () => (await import('./demo.js')).demoCommand,
  },
  inspect: {
    summary: 'print, verify and open key and data messages (CBOR diagnostic notation or JSON)',
    load: async () => (await import('./inspect.js')).inspectCommand,
  },
  sim: {
    summary: 'run simulated devices against an MQTT broker (the firmware on Node)',
    load: async () => (await import('./sim.js')).simCommand,
  },
  watch: {
    summary: 'subscribe and print every device message as the cloud judges it: mosquitto_sub with the keys',
    load: async () => (await import('./watch.js')).watchCommand,
  },
  tour: {
    summary: 'walk through the protocol on throwaway keys: device seals, cloud opens, forgeries refused',
    load: async () => (await import('./tour.js')).tourCommand,
  },
};

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function usage(): string {
  const width = Math.max(...Object.keys(commands).map((name) => name.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    'Usage: cose-flow COMMAND [options]',
    '',
    'Commands:',
    ...lines,
    '',
    'Run `cose-flow COMMAND --help` for the options of a command.',
    '',
  ].join('\n');
}

/** Runs the command line `argv` (without node and script); resolves to the exit code. */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    io.stderr(usage());
    return 2;
  }
  if (name === '--help' || name === '-h') {
    io.stdout(usage());
    return 0;
  }
  if (name === 'help') {
    const target = rest[0] !== undefined && Object.hasOwn(commands, rest[0]) ? commands[rest[0]] : undefined;
    io.stdout(target === undefined ? usage() : (await target.load()).usage);
    return 0;
  }
  if (name === '--version' || name === '-V') {
    io.stdout(`cose-flow ${version()}\n`);
    return 0;
  }
  const entry = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (entry === undefined) {
    io.stderr(`cose-flow: unknown command ${JSON.stringify(name)}\n\n${usage()}`);
    return 2;
  }
  const command = await entry.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout(command.usage);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`cose-flow ${name}: ${e.message}\nRun \`cose-flow ${name} --help\` for usage.\n`);
      return 2;
    }
    io.stderr(`cose-flow ${name}: ${describeFailure(e)}\n`);
    return 1;
  }
}
