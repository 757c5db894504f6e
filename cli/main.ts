/**
 * `cose-flow COMMAND [options]`: the command-line entry (bin/cose-flow.js calls `main`).
 * Subcommands are one table; add an entry to add a command.
 */
import { readFileSync } from 'node:fs';
import { caCommand } from './ca.js';
import { cloudCommand } from './cloud.js';
import { type CliIo, type Command, processIo, UsageError } from './command.js';
import { demoCommand } from './demo.js';
import { inspectCommand } from './inspect.js';
import { simCommand } from './sim.js';
import { tourCommand } from './tour.js';

export const commands: Record<string, Command> = {
  ca: caCommand,
  cloud: cloudCommand,
  demo: demoCommand,
  inspect: inspectCommand,
  sim: simCommand,
  tour: tourCommand,
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
    const target = rest[0] === undefined ? undefined : commands[rest[0]];
    io.stdout(target?.usage ?? usage());
    return 0;
  }
  if (name === '--version' || name === '-V') {
    io.stdout(`cose-flow ${version()}\n`);
    return 0;
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (command === undefined) {
    io.stderr(`cose-flow: unknown command ${JSON.stringify(name)}\n\n${usage()}`);
    return 2;
  }
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
    io.stderr(`cose-flow ${name}: ${(e as Error)?.stack ?? String(e)}\n`);
    return 1;
  }
}
